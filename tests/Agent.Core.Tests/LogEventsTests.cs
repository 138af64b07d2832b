using System.Reflection;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Tests;

/// <summary>Log-based alerting keys on event ids: every [LoggerMessage] of the agent has its own, from <see cref="LogEvents"/>.</summary>
public class LogEventsTests
{
    private static readonly Assembly[] AgentAssemblies =
    [
        typeof(LogEvents).Assembly, // Agent.Core
        Assembly.Load("backrest-agent"), // Agent.Server (referenced by this project for this test)
    ];

    private static IEnumerable<(string Method, LoggerMessageAttribute Attribute)> LogMessages() =>
        from assembly in AgentAssemblies
        from type in assembly.GetTypes()
        from method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly)
        let attribute = method.GetCustomAttribute<LoggerMessageAttribute>()
        where attribute is not null
        select ($"{type.FullName}.{method.Name}", attribute);

    [Fact]
    public void LoggerMessages_AcrossTheAgentsAssemblies_EachEventIdUsedOnce()
    {
        var messages = LogMessages().ToList();
        Assert.True(messages.Count >= 12, $"found only {messages.Count} [LoggerMessage] methods: is the reflection looking in the right place?");

        var shared = messages.GroupBy(m => m.Attribute.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Method))}").ToList();
        Assert.True(shared.Count == 0, $"event ids used by more than one message: {string.Join("; ", shared)}");
    }

    [Fact]
    public void LoggerMessages_EventIdAndName_ComeFromLogEvents()
    {
        var constants = typeof(LogEvents).GetFields(BindingFlags.Public | BindingFlags.Static)
            .ToDictionary(f => f.Name, f => (int)f.GetRawConstantValue()!);

        Assert.All(LogMessages(), m =>
        {
            Assert.True(m.Attribute.EventName is { } name && constants.TryGetValue(name, out var id) && id == m.Attribute.EventId,
                $"{m.Method}: event {m.Attribute.EventId} '{m.Attribute.EventName}' is not LogEvents.{m.Attribute.EventName}");
        });
        Assert.Equal(constants.Count, constants.Values.Distinct().Count());
    }
}
