using Bastion.Access;
using Bastion.Anomaly;
using Bastion.Api;
using Bastion.Audit;
using Bastion.Cluster;
using Bastion.Generation;
using Bastion.Limits;
using Bastion.Security;
using Bastion.Storage;
using Bastion.Users;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Bastion.Hosting;

public static class SiloRegistration
{
    /// <summary>The ADO.NET grain storage beneath the envelope layer; only sealed envelopes reach it.</summary>
    internal const string SealedStorageName = "bastion-sealed";

    /// <summary>
    /// The Orleans silo: ADO.NET clustering, grain storage and reminders on PostgreSQL (the same code
    /// for one node and for a cluster), and the inference engine on worker silos.
    /// </summary>
    public static WebApplicationBuilder AddBastionSilo(this WebApplicationBuilder builder, NodeOptions node, BastionDatabase database, DevelopmentPaths paths)
    {
        var clusterId = node.ClusterId;
        if (string.IsNullOrWhiteSpace(clusterId))
        {
            if (!builder.Environment.IsDevelopment())
            {
                throw new StartupException($"{NodeOptions.SectionName}:ClusterId is not set; every silo of a cluster needs the same cluster id.");
            }

            // A development node is a cluster of one: a fresh id per start means a silo killed
            // earlier is never waited for, while grain state (keyed by ServiceId) carries over.
            clusterId = "dev-" + Guid.NewGuid().ToString("N")[..12];
        }

        // Registered before Orleans so that a worker has its models before it joins the cluster.
        builder.Services.AddBastionInference(builder.Configuration, paths.Models, loadModels: node.HasRole(NodeOptions.WorkerRole), node.DrainTimeout);

        const string invariant = "Npgsql";
        var connectionString = database.RuntimeConnectionString;
        // Created by a factory so that the container owns it: disposing the app (also after a start-up
        // that was cancelled half-way) stops the embedded PostgreSQL.
        builder.Services.AddSingleton(_ => database);

        // Every silo may host any user's grain, so every silo needs the keys that open grain state.
        var keys = builder.Configuration.BindValidated<KeyOptions>(KeyOptions.SectionName);
        if (keys.EffectiveProvider(builder.Environment.IsDevelopment()) == KeyProviderKind.KeyVault)
        {
            builder.Services.AddKeyVaultKeys(keys.KeyVault, builder.Environment.IsDevelopment());
        }
        else
        {
            builder.Services.AddSingleton<IKeyProvider>(_ => DevelopmentKeyring.LoadOrCreate(keys.KeyringPath ?? paths.Keyring));
        }

        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddHostedService<DatabaseLifetime>();
        // The audit trail starts before Orleans and stops after it (hosted services stop in reverse), so that every
        // record a grain queued while the silo stopped is written, and before the embedded database stops.
        var audit = builder.Configuration.BindValidated<AuditOptions>(AuditOptions.SectionName);
        builder.Services.AddSingleton(audit);
        builder.Services.AddSingleton(sp => new AuditTrail(
            database.RuntimeConnectionString,
            sp.GetRequiredService<DataKeyStore>(),
            sp.GetRequiredService<IKeyProvider>(),
            audit,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<AuditTrail>>(),
            sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        builder.Services.AddSingleton<IAuditTrail>(sp => sp.GetRequiredService<AuditTrail>());
        builder.Services.AddSingleton<EmergencySwitchboard>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AuditTrail>());
        builder.Services.AddSingleton(sp => new AuditLedger(database.RuntimeConnectionString, sp.GetRequiredService<DataKeyStore>()));
        // Before Orleans, like the keys: a certificate from Key Vault is read and checked before the first connection.
        builder.Services.AddBastionClusterTls(builder.Configuration, builder.Environment.IsDevelopment(), paths);
        builder.Services.AddOptions<LimitOptions>().BindConfiguration(LimitOptions.SectionName)
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<LimitOptions>>(new ProblemsValidator<LimitOptions>(options => options.Problems()));
        // A misspelt signal or role name must stop the silo, not silently leave the default in force.
        builder.Services.AddOptions<AnomalyOptions>().BindConfiguration(AnomalyOptions.SectionName, binder => binder.ErrorOnUnknownConfiguration = true)
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<AnomalyOptions>>(new ProblemsValidator<AnomalyOptions>(options => options.Problems()));
        builder.UseOrleans(silo =>
        {
            if (!node.HasRole(NodeOptions.WorkerRole))
            {
                // Generation grains exist only where models are loaded, so placement can only choose worker silos.
                silo.Configure<GrainTypeOptions>(options => options.Classes.Remove(typeof(GenerationGrain)));
            }

            // Every call into this silo proves where it came from: a silo assertion or a service token (docs/zero-trust.md).
            silo.AddBastionZeroTrust(builder.Configuration);

            // Grain calls join the caller's trace, across silos (docs/metrics.md, "Traces").
            silo.AddActivityPropagation();

            // Every silo may place a generation grain; it chooses the worker with the shortest batching queue.
            silo.Services.AddPlacementDirector<QueueDepthPlacement, QueueDepthPlacementDirector>();
            // Before Bastion's ClusterOptions, so that Bastion's ids are applied after Orleans' Kubernetes defaults (deploy/kubernetes/).
            silo.AddBastionKubernetesHosting(builder.Configuration, node);
            silo.Configure<ClusterOptions>(options =>
            {
                options.ClusterId = clusterId;
                options.ServiceId = node.ServiceId;
            });
            silo.UseAdoNetClustering(options =>
            {
                options.Invariant = invariant;
                options.ConnectionString = connectionString;
            });
            // Grains name the "bastion" storage: the envelope layer, which seals every state and
            // hands the envelope to ADO.NET storage registered under a name no grain uses.
            silo.AddAdoNetGrainStorage(SealedStorageName, (OptionsBuilder<AdoNetGrainStorageOptions> options) => options.Configure(storage =>
            {
                storage.Invariant = invariant;
                storage.ConnectionString = connectionString;
                storage.GrainStorageSerializer = new EnvelopeRecordSerializer();
            }));
            // The key store is a database of its own, so that no backup of the state database holds a key.
            silo.Services.AddSingleton(sp => new DataKeyStore(database.KeyStoreConnectionString, sp.GetRequiredService<IKeyProvider>()));
            silo.Services.AddSingleton(new StateVersions(database.KeyStoreConnectionString));
            silo.Services.AddSingleton<IUserIdProtector, UserIdProtector>();
            // Erasure: a destroyed key is evicted from every silo's cache, through a grain pinned to each silo.
            silo.Services.AddPlacementDirector<SiloPinnedPlacement, SiloPinnedPlacementDirector>();
            silo.Services.AddSingleton<DataKeyEvictionBroadcast>();
            silo.Services.AddSingleton<UserErasure>();
            silo.Services.AddSingleton<KeyRotation>();
            silo.Services.AddSingleton<RewrapJob>();
            // States are serialized in Orleans' own version-tolerant binary format ([Id]-numbered
            // fields): no type names in payloads, and no JSON serializer populating shared defaults.
            silo.Services.AddKeyedSingleton<IGrainStorage>(StorageNames.Bastion, (sp, _) => new EncryptedGrainStorage(
                sp.GetRequiredKeyedService<IGrainStorage>(SealedStorageName),
                sp.GetRequiredService<DataKeyStore>(),
                sp.GetRequiredService<StateVersions>(),
                sp.GetRequiredService<Serializer>(),
                sp.GetRequiredService<IActivatorProvider>(),
                sp.GetRequiredService<ILogger<EncryptedGrainStorage>>()));
            silo.UseAdoNetReminderService(options =>
            {
                options.Invariant = invariant;
                options.ConnectionString = connectionString;
            });
            // Orleans' own knobs, bound as they are: membership probes and timeouts need tuning on
            // small or busy machines, or healthy silos get declared dead.
            silo.Services.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection("Bastion:Cluster:Membership"));
            silo.Services.Configure<SiloMessagingOptions>(builder.Configuration.GetSection("Bastion:Cluster:Messaging"));
            silo.ConfigureEndpoints(
                node.ResolveAdvertisedAddress(),
                FreePort.OrPick(node.SiloPort),
                FreePort.OrPick(node.GatewayPort),
                listenOnAnyHostAddress: false);
        });

        return builder;
    }

    /// <summary>Stops the embedded PostgreSQL once everything else has stopped (hosted services stop in reverse order).</summary>
    private sealed class DatabaseLifetime(BastionDatabase database) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task StopAsync(CancellationToken cancellationToken) => await database.DisposeAsync();
    }
}
