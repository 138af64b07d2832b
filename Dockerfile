# backrest-agent image: the agent, backrestctl, the NativeAOT archive client and pgBackRest on Debian 12 (bookworm),
# the same pgBackRest package the tests run against. Nothing secret is baked in: settings come from the pod spec.
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
RUN dotnet restore agent/Agent.Server -r linux-x64 && dotnet restore agent/Agent.Cli -r linux-x64 \
 && dotnet restore agent/Agent.ArchiveClient -r linux-x64
COPY protos/ protos/
COPY agent/ agent/
# All three are NativeAOT (PublishAot in their projects), so the runtime stage is plain Debian 12 with no .NET install.
RUN dotnet publish agent/Agent.Server -c Release -r linux-x64 -o /out/agent --no-restore \
 && dotnet publish agent/Agent.Cli -c Release -r linux-x64 -o /out/cli \
 && dotnet publish agent/Agent.ArchiveClient -c Release -r linux-x64 -o /out/archive-client

FROM debian:bookworm-slim
# Restore drills start the restored backup with PostgreSQL's own server binaries (Agent:Drills:PostgresBinDirectory,
# default /usr/lib/postgresql/<major>/bin): the cluster's major version. Debian 12 ships 15; for another major, add the
# PGDG apt repository (apt.postgresql.org) and set PG_MAJOR. No cluster is created in the image.
ARG PG_MAJOR=15
# The postgres user gets uid/gid 999 first, as in the official postgres image, so both containers of the pod share
# the data directory's owner; postgresql-common (pulled in by pgbackrest) then reuses it.
# tini reaps the detached pgBackRest async workers that the agent would otherwise leave as zombies.
RUN groupadd --gid 999 postgres \
 && useradd --uid 999 --gid 999 --home-dir /var/lib/postgresql --no-create-home --shell /bin/bash postgres \
 && mkdir -p /etc/postgresql-common && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends pgbackrest tini ca-certificates libssl3 zlib1g "postgresql-${PG_MAJOR}" \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/agent /opt/backrest-agent
COPY --from=build /out/cli/backrestctl /usr/local/bin/backrestctl
# The archive client is copied by an init container into the volume shared with PostgreSQL
# (Agent:Postgres:ArchiveClientPath), since the PostgreSQL container has neither .NET nor pgBackRest.
COPY --from=build /out/archive-client/pgbackrest-archive /opt/backrest-agent/pgbackrest-archive
USER 999:999
# A 2 MiB gen0 budget (the default follows the CPU's cache size): less resident memory after a burst of gRPC calls for a
# few more, short, gen0 collections (tests/bench/footprint.sh). Only an environment variable sets it, in hex without
# "0x": the NativeAOT runtime ignores a value with that prefix.
ENV DOTNET_GCgen0size=200000
WORKDIR /opt/backrest-agent
EXPOSE 7480 9187
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/backrest-agent/backrest-agent"]
