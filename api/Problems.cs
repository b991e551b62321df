using Microsoft.AspNetCore.Http;

namespace DataBuild.Api;

/// <summary>RFC 9457 problem responses with a precise title and detail per case.</summary>
public static class Problems
{
    public static IResult BadRequest(string title, string detail) => Problem(StatusCodes.Status400BadRequest, title, detail);
    public static IResult NotFound(string title, string detail) => Problem(StatusCodes.Status404NotFound, title, detail);
    public static IResult Conflict(string title, string detail) => Problem(StatusCodes.Status409Conflict, title, detail);
    public static IResult TooLarge(string title, string detail) => Problem(StatusCodes.Status413PayloadTooLarge, title, detail);
    public static IResult Unprocessable(string title, string detail) => Problem(StatusCodes.Status422UnprocessableEntity, title, detail);
    public static IResult Unavailable(string title, string detail) => Problem(StatusCodes.Status503ServiceUnavailable, title, detail);

    private static IResult Problem(int status, string title, string detail) => Results.Problem(title: title, detail: detail, statusCode: status);
}

/// <summary>A request that cannot be served, carrying its problem response.</summary>
public sealed class ProblemException(IResult problem) : Exception("request rejected")
{
    public IResult Problem { get; } = problem;
}
