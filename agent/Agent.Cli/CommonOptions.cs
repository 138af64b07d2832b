using System.CommandLine;

namespace Backrest.Agent.Cli;

/// <summary>Options several commands share, with the same local checks (the agent checks again).</summary>
internal static class CommonOptions
{
    /// <summary>Only the sign is checked here: how many repositories there are is the agent's to say (it names them when refusing).</summary>
    public static Option<int> Repo(string description)
    {
        var option = new Option<int>("--repo")
        {
            Description = description,
            HelpName = "N",
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 0)
            {
                result.AddError("--repo must be a repository number (1, 2, ...) or 0.");
            }
        });
        return option;
    }

    public static Option<bool> Wait(string what) => new("--wait", "-w")
    {
        Description = $"Follow the {what} with a progress bar until it ends; exit 1 if it fails. Ctrl+C stops watching, not the {what}.",
    };
}
