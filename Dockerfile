# backrest-agent image: the agent, backrestctl, the NativeAOT archive client and pgBackRest.
# Multi-stage: the SDK builds, a slim Debian runtime runs (pgBackRest comes from Debian, like the tests).
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang zlib1g-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Restore first so the package layer is cached across source changes.
COPY global.json nuget.config Directory.Build.props Directory.Packages.props Agent.sln ./
COPY protos/Agent.Protos.csproj protos/
COPY agent/Agent.Core/Agent.Core.csproj agent/Agent.Core/
COPY agent/Agent.Server/Agent.Server.csproj agent/Agent.Server/
COPY agent/Agent.Cli/Agent.Cli.csproj agent/Agent.Cli/
COPY agent/Agent.ArchiveClient/Agent.ArchiveClient.csproj agent/Agent.ArchiveClient/
RUN dotnet restore agent/Agent.Server && dotnet restore agent/Agent.Cli -r linux-x64 && dotnet restore agent/Agent.ArchiveClient -r linux-x64
COPY protos/ protos/
COPY agent/ agent/
RUN dotnet publish agent/Agent.Server -c Release -o /out/agent --no-restore \
 && dotnet publish agent/Agent.Cli -c Release -r linux-x64 -o /out/cli \
 && dotnet publish agent/Agent.ArchiveClient -c Release -r linux-x64 -o /out/archive-client

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# tini reaps the detached pgBackRest async workers that the agent (PID 1) would otherwise leave as zombies.
RUN apt-get update && apt-get install -y --no-install-recommends pgbackrest tini && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/agent /opt/backrest-agent
COPY --from=build /out/cli/backrestctl /usr/local/bin/backrestctl
# The archive client is copied by an init step into the volume shared with PostgreSQL
# (Agent:Postgres:ArchiveClientPath), since the PostgreSQL container has neither .NET nor pgBackRest.
COPY --from=build /out/archive-client/pgbackrest-archive /opt/backrest-agent/pgbackrest-archive
# Run as the PostgreSQL user's uid so the agent can read the data directory and write restores.
USER 999
WORKDIR /opt/backrest-agent
ENTRYPOINT ["/usr/bin/tini", "--", "dotnet", "/opt/backrest-agent/backrest-agent.dll"]
