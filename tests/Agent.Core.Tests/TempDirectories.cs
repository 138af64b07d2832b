namespace Backrest.Agent.Core.Tests;

internal static class TempDirectories
{
    /// <summary>
    /// Removes a test's directory. The operation history is written in the background after an operation ends, so a
    /// last write may still be creating its temporary file when the test is done: retry briefly instead of failing
    /// the test in its cleanup ("Directory not empty").
    /// </summary>
    public static void Delete(string directory)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Directory.Delete(directory, recursive: true);
                return;
            }
            catch (IOException) when (attempt < 20)
            {
                Thread.Sleep(50);
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
        }
    }
}
