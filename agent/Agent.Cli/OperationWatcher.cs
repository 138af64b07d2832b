using System.Globalization;
using Backrest.Agent.V1;
using Grpc.Core;
using Spectre.Console;

namespace Backrest.Agent.Cli;

/// <summary>
/// Follows an operation with WatchOperation until it ends, shows progress, then prints the summary.
/// Shared by <c>backup --wait</c>, <c>restore --wait</c> and <c>operation ID --wait</c>.
/// </summary>
internal sealed class OperationWatcher(CommandContext context)
{
    /// <summary>Non-terminal output gets a line each time the percentage enters another tenth.</summary>
    private const double LineStep = 10;

    /// <returns>0 when the operation succeeded, 1 when it failed or was cancelled, 130 when Ctrl+C stopped the watch.</returns>
    /// <param name="cancelOnExit">Ctrl+C also cancels the operation on the agent.</param>
    public async Task<int> WatchAsync(AgentAddress agent, Operation initial, CancellationToken cancellationToken, bool cancelOnExit = false)
    {
        var output = context.Output;
        var last = initial;
        try
        {
            if (!OperationReport.IsFinal(initial))
            {
                if (context.Json)
                {
                    last = await FollowAsync(agent, initial.Id, _ => { }, cancellationToken);
                }
                else
                {
                    output.Out.WriteLine(OperationReport.Header(agent, initial));
                    last = output.IsTerminal
                        ? await FollowWithBarAsync(agent, initial, cancellationToken)
                        : await FollowWithLinesAsync(agent, initial, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && cancelOnExit)
        {
            // The user's token is spent: the cancel gets its own deadline.
            await context.Agents.CallAsync(agent, (client, options) => client.CancelOperationAsync(new CancelOperationRequest { Id = initial.Id }, options),
                CancellationToken.None);
            output.Fail($"cancelled {OperationReport.Kind(initial)} {initial.Id} on {agent} (--cancel-on-exit).");
            return ExitCodes.Interrupted;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl+C ends only this client's watch; the agent keeps running the operation.
            output.Fail($"stopped watching; {OperationReport.Kind(initial)} {initial.Id} keeps running on {agent}."
                + $" Follow it again with: {OperationReport.FollowHint(agent, initial)}");
            return ExitCodes.Interrupted;
        }
        catch (AgentCallException ex)
        {
            // The stream broke (agent restarted, network): the operation may well still be running.
            throw new CliException(
                $"{ex.Message}{Environment.NewLine}  the watch of {OperationReport.Kind(initial)} {initial.Id} broke off;"
                + $" see where it stands with: backrestctl --agent {agent} operation {initial.Id}");
        }

        if (last is null || !OperationReport.IsFinal(last))
        {
            throw new CliException(
                $"{agent}: the watch of operation {initial.Id} ended before the operation did;"
                + $" see where it stands with: backrestctl --agent {agent} operation {initial.Id}");
        }

        if (context.Json)
        {
            output.WriteJson(last);
            return last.State == OperationState.Succeeded ? ExitCodes.Success : ExitCodes.Failure;
        }

        return OperationReport.WriteSummary(output, last);
    }

    private async Task<Operation?> FollowWithBarAsync(AgentAddress agent, Operation initial, CancellationToken cancellationToken)
    {
        Operation? last = null;
        await context.Output.Console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn { Alignment = Justify.Left },
                new ProgressBarColumn(),
                new PercentageColumn(),
                new ElapsedTimeColumn(),
                new SpinnerColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask(Describe(initial), maxValue: 100);
                Update(task, initial);
                last = await FollowAsync(agent, initial.Id, operation => Update(task, operation), cancellationToken);
                if (last?.State == OperationState.Succeeded)
                {
                    task.IsIndeterminate = false;
                    task.Value = task.MaxValue;
                }

                task.StopTask();
            });
        return last;

        static void Update(ProgressTask task, Operation operation)
        {
            task.Description = Describe(operation);
            task.IsIndeterminate = operation.Percent < 0;
            if (operation.Percent >= 0)
            {
                task.Value = Math.Min(operation.Percent, task.MaxValue);
            }
        }

        // The description column renders markup, and phases come from pgBackRest output ("[...]" would be read as style).
        static string Describe(Operation operation) =>
            Markup.Escape(operation.Phase.Length > 0 ? operation.Phase : Format.OrNone(operation.Description));
    }

    private Task<Operation?> FollowWithLinesAsync(AgentAddress agent, Operation initial, CancellationToken cancellationToken)
    {
        var writer = context.Output.Out;
        string? lastPhase = null;
        var lastStep = -1;
        void Report(Operation operation)
        {
            var step = operation.Percent < 0 ? -1 : (int)Math.Floor(operation.Percent / LineStep);
            if (operation.Phase != lastPhase || step > lastStep)
            {
                var time = context.Time.GetUtcNow().ToString("HH:mm:ss", CultureInfo.InvariantCulture);
                writer.WriteLine($"{time} {Format.Percent(operation.Percent),4} {Format.OrNone(operation.Phase)}");
                lastPhase = operation.Phase;
                lastStep = Math.Max(step, lastStep);
            }
        }

        Report(initial);
        return FollowAsync(agent, initial.Id, Report, cancellationToken);
    }

    /// <summary>Reads the stream to its end: the agent sends the current state, every change, and closes after the final one.</summary>
    private async Task<Operation?> FollowAsync(
        AgentAddress agent,
        string id,
        Action<Operation> onUpdate,
        CancellationToken cancellationToken)
    {
        var client = context.Agents.Client(agent);
        using var call = client.WatchOperation(
            new WatchOperationRequest { Id = id },
            AgentConnections.StreamingOptions(cancellationToken));
        Operation? last = null;
        try
        {
            await foreach (var operation in call.ResponseStream.ReadAllAsync(cancellationToken))
            {
                last = operation;
                onUpdate(operation);
            }
        }
        catch (RpcException ex)
        {
            throw context.Agents.Wrap(agent, ex, cancellationToken);
        }

        return last;
    }
}
