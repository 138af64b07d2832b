using System.CommandLine;
using Google.Protobuf;

namespace Backrest.Agent.Cli;

/// <summary>What a command's action works with, built once per invocation from the global options.</summary>
internal sealed class CommandContext(ParseResult parseResult, Output output, AgentConnections agents, bool json, TimeProvider time)
    : IDisposable
{
    public ParseResult ParseResult { get; } = parseResult;

    public Output Output { get; } = output;

    public AgentConnections Agents { get; } = agents;

    /// <summary>--json: print protobuf JSON instead of the human form.</summary>
    public bool Json { get; } = json;

    public TimeProvider Time { get; } = time;

    /// <summary>
    /// Prints the replies of a call made to every agent: failures on stderr, the rest as JSON or through
    /// <paramref name="writeHuman"/> (with an agent heading when there are several). Exit 1 if any agent failed.
    /// </summary>
    public int WriteReplies<T>(IReadOnlyList<AgentReply<T>> replies, Action<AgentAddress, T> writeHuman, bool headings = true)
        where T : class, IMessage
    {
        foreach (var failed in replies.Where(r => r.Error is not null))
        {
            Output.Fail(failed.Error!.Message);
        }

        if (Json)
        {
            Output.WriteJson(replies);
        }
        else
        {
            var first = true;
            foreach (var (agent, reply, _) in replies)
            {
                if (reply is null)
                {
                    continue;
                }

                if (headings && replies.Count > 1)
                {
                    if (!first)
                    {
                        Output.Out.WriteLine();
                    }

                    Output.Out.WriteLine($"agent {agent}");
                }

                first = false;
                writeHuman(agent, reply);
            }
        }

        return replies.Any(r => r.Error is not null) ? ExitCodes.Failure : ExitCodes.Success;
    }

    public void Dispose() => Agents.Dispose();
}
