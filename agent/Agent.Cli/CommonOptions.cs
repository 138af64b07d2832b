using System.CommandLine;

namespace Backrest.Agent.Cli;

/// <summary>Options several commands share, with the same local checks (the agent checks again).</summary>
internal static class CommonOptions
{
    public const int MaxRepo = 4;

    public static Option<int> Repo(string description)
    {
        var option = new Option<int>("--repo")
        {
            Description = description,
            HelpName = "0-" + MaxRepo,
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 0 or > MaxRepo)
            {
                result.AddError($"--repo must be from 0 to {MaxRepo}.");
            }
        });
        return option;
    }

    public static Option<bool> Wait(string what) => new("--wait", "-w")
    {
        Description = $"Follow the {what} with a progress bar until it ends; exit 1 if it fails. Ctrl+C stops watching, not the {what}.",
    };
}
