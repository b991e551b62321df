using Microsoft.AspNetCore.Http;

namespace DataBuild.Api;

/// <summary>RFC 9457 problem responses with a precise title and detail per case.</summary>
public static class Problems
{
    public static IResult BadRequest(string title, string detail) =>
        Results.Problem(title: title, detail: detail, statusCode: StatusCodes.Status400BadRequest);

    public static IResult Unavailable(string title, string detail) =>
        Results.Problem(title: title, detail: detail, statusCode: StatusCodes.Status503ServiceUnavailable);
}
