using System.Text.Json;
using DataBuild.Protos;
using DataBuild.Runtime.EventLog;
using Google.Protobuf;

namespace DataBuild.Api;

/// <summary>
/// Events in the HTTP API: <c>{"index": n, "timestamp": "RFC 3339", "type": "want_create", "want_create": {…}}</c>.
/// The body under the type name is the proto3 JSON mapping with the proto's snake_case field names
/// (64-bit numbers in it are strings, as proto3 JSON has them).
/// </summary>
public static class EventJson
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true).WithFormatDefaultValues(false));

    public static void Write(Utf8JsonWriter writer, DataBuildEvent e)
    {
        var type = EventTypeNames.Of(e);
        writer.WriteStartObject();
        writer.WriteNumber("index", e.Index);
        writer.WriteString("timestamp", ApiJson.Instant((long)e.Timestamp));
        writer.WriteString("type", type);
        writer.WritePropertyName(type);
        var body = (IMessage)DataBuildEvent.Descriptor.FindFieldByName(type).Accessor.GetValue(e);
        writer.WriteRawValue(Formatter.Format(body), skipInputValidation: true);
        writer.WriteEndObject();
    }

    public static byte[] Page(EventPage page)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("events");
            foreach (var e in page.Events) Write(writer, e);
            writer.WriteEndArray();
            writer.WriteNumber("next_idx", page.NextIdx);
            writer.WriteBoolean("has_more", page.HasMore);
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
