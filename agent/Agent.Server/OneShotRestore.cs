using Backrest.Agent.Core;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.Restore;

namespace Backrest.Agent.Server;

/// <summary>
/// <c>backrest-agent restore [options]</c>: the same restore, validation and messages as StartRestore,
/// run in the foreground with progress on stderr. Exit 0 on success, 1 on a refused or failed restore,
/// 2 on bad usage.
/// </summary>
internal static class OneShotRestore
{
    private const string Usage = """
        usage: backrest-agent restore [--target-type latest|immediate|time|xid|lsn|name|standby] [--target T]
                                      [--set LABEL] [--repo N] [--data-directory DIR] [--delta | --no-delta]
                                      [--target-action pause|promote|shutdown] [--target-exclusive]
                                      [--target-timeline TL] [--port N] [--archive-mode-on]
        Configuration comes from the environment (Agent__Stanza, ...) or --Agent:Key=value flags.
        """;

    public static async Task<int> RunAsync(string[] args, AgentOptions options, AgentRuntime runtime)
    {
        RestoreRequest request;
        try
        {
            request = Parse(args.Where(a => !a.StartsWith("--Agent:", StringComparison.Ordinal)).ToArray());
        }
        catch (FormatException ex)
        {
            Console.Error.WriteLine($"backrest-agent restore: {ex.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var services = new ServiceCollection()
            .AddLogging()
            .AddAgentCore(options, runtime)
            .BuildServiceProvider();
        await using var _ = services;
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        var lastPercent = -10.0;
        var lastPhase = "";
        try
        {
            var outcome = await services.GetRequiredService<RestoreService>().RunNowAsync(request, snapshot =>
            {
                if (snapshot.Percent >= lastPercent + 10 || snapshot.Phase != lastPhase)
                {
                    Console.Error.WriteLine($"restore: {snapshot.Phase} {Math.Max(0, snapshot.Percent):F0}%");
                    lastPercent = snapshot.Percent;
                    lastPhase = snapshot.Phase;
                }

                if (snapshot.State == OperationState.Succeeded)
                {
                    foreach (var warning in snapshot.Warnings)
                    {
                        Console.Error.WriteLine($"warning: {warning}");
                    }
                }
            }, cancel.Token);
            Console.WriteLine($"restored backup {outcome.BackupLabel}{(outcome.Repo > 0 ? $" from repo{outcome.Repo}" : "")} into {outcome.DataDirectory}");
            Console.WriteLine($"next: {outcome.NextStep}");
            return 0;
        }
        catch (AgentException ex)
        {
            Console.Error.WriteLine($"backrest-agent restore: {Backrest.Agent.V1.StatusCodeNames.Name(Grpc.ErrorInterceptor.ToStatusCode(ex.Kind))}: {ex.Message}");
            if (ex.Hint is not null)
            {
                Console.Error.WriteLine($"hint: {ex.Hint}");
            }

            return 1;
        }
    }

    internal static RestoreRequest Parse(string[] args)
    {
        var request = new RestoreRequest();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{name} needs a value.");
            int Number()
            {
                var text = Value();
                return int.TryParse(text, out var n) ? n : throw new FormatException($"{name} needs a number, got '{text}'.");
            }

            request = name switch
            {
                "--target-type" => request with { TargetType = Value() },
                "--target" => request with { Target = Value() },
                "--set" => request with { Set = Value() },
                "--repo" => request with { Repo = Number() },
                "--data-directory" => request with { DataDirectory = Value() },
                "--delta" => request with { Delta = true },
                "--no-delta" => request with { Delta = false },
                "--target-action" => request with { TargetAction = Value() },
                "--target-exclusive" => request with { TargetExclusive = true },
                "--target-timeline" => request with { TargetTimeline = Value() },
                "--port" => request with { Port = Number() },
                "--archive-mode-on" => request with { ArchiveModeOn = true },
                _ => throw new FormatException($"unknown option '{name}'."),
            };
        }

        return request;
    }
}
