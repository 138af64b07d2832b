using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using ProtoServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.AspNetCore.Routing;

namespace Backrest.Agent.Server.Grpc;

internal static class StrictRequestParsingExtensions
{
    /// <summary>What the framework's own binder keeps of a service type for trimming and NativeAOT (its constructor and methods).</summary>
    internal const DynamicallyAccessedMemberTypes ServiceMembers =
        DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.PublicMethods | DynamicallyAccessedMemberTypes.NonPublicMethods;

    /// <summary>
    /// Serves <typeparamref name="TService"/> through <see cref="StrictRequestParsingMethodProvider{TService}"/> only.
    /// </summary>
    /// <remarks>
    /// AddGrpc registers the framework's binder as an open-generic <c>IServiceMethodProvider&lt;&gt;</c>, and the route
    /// builder maps every method each provider adds, without removing duplicates: registering ours next to it would map
    /// each route twice (an ambiguous match on every call). An exact registration of the enumerable is what the container
    /// resolves instead of composing one from the generic registrations, so the framework's binder is left out for
    /// this service only.
    /// </remarks>
    public static IServiceCollection AddStrictRequestParsing<[DynamicallyAccessedMembers(ServiceMembers)] TService>(
        this IServiceCollection services, ProtoServiceDescriptor descriptor, Action<ServiceBinderBase> bindService)
        where TService : class
    {
        services.AddSingleton<IEnumerable<IServiceMethodProvider<TService>>>(
            [new StrictRequestParsingMethodProvider<TService>(descriptor, bindService)]);
        return services;
    }
}

/// <summary>
/// Binds a generated service's methods as the framework does, but a request body that is not a valid message is answered
/// with INVALID_ARGUMENT naming the expected message.
/// </summary>
/// <remarks>
/// Grpc.AspNetCore deserializes the request before interceptors run, so <see cref="ErrorInterceptor"/> never sees a
/// parse failure: the framework answers UNKNOWN "Exception was thrown by handler." and logs a stack trace at Error,
/// although the fault is the caller's. Throwing an <see cref="RpcException"/> from the deserializer fixes the status,
/// but the framework still logs that exception with its stack ("Error reading message."). So the deserializer does not
/// throw: it returns a placeholder message, remembered with the parser's complaint, and the invoker registered here (the
/// only way to the service) answers the placeholder with the error. The framework then logs one Information line.
/// </remarks>
internal sealed class StrictRequestParsingMethodProvider<[DynamicallyAccessedMembers(StrictRequestParsingExtensions.ServiceMembers)] TService>(
    ProtoServiceDescriptor descriptor, Action<ServiceBinderBase> bindService)
    : IServiceMethodProvider<TService>
    where TService : class
{
    // Placeholder request -> the INVALID_ARGUMENT detail to answer it with; an entry goes when its placeholder is collected.
    private readonly ConditionalWeakTable<object, string> _rejected = new();

    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context) => bindService(new Binder(context, this));

    /// <summary>Receives the generated descriptors; the generated handlers are null (no instance) and unused.</summary>
    private sealed class Binder(ServiceMethodProviderContext<TService> context, StrictRequestParsingMethodProvider<TService> provider)
        : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
        {
            var (invoker, metadata) = Find<UnaryServerMethod<TService, TRequest, TResponse>>(
                method.Name, typeof(TRequest), typeof(ServerCallContext));
            context.AddUnaryMethod(provider.WithStrictParsing(method), metadata, (service, request, call) =>
            {
                provider.ThrowIfRejected(request);
                return invoker(service, request, call);
            });
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler)
        {
            var (invoker, metadata) = Find<ServerStreamingServerMethod<TService, TRequest, TResponse>>(
                method.Name, typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext));
            context.AddServerStreamingMethod(provider.WithStrictParsing(method), metadata, (service, request, responses, call) =>
            {
                provider.ThrowIfRejected(request);
                return invoker(service, request, responses, call);
            });
        }

        // The service reads each message of a request stream itself, so a placeholder would reach it; fail at start-up
        // rather than bind such a method without the check.
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            throw new NotSupportedException($"Strict request parsing does not support the client-streaming method {method.FullName}.");

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            throw new NotSupportedException($"Strict request parsing does not support the duplex-streaming method {method.FullName}.");

        /// <summary>
        /// An open-instance delegate to the service's override, so the framework still creates the service per call, plus
        /// the endpoint metadata the framework's binder adds (attributes of the type and method; POST only).
        /// </summary>
        private static (TDelegate Invoker, List<object> Metadata) Find<TDelegate>(string name, params Type[] parameters)
            where TDelegate : Delegate
        {
            var handler = typeof(TService).GetMethod(name, BindingFlags.Public | BindingFlags.Instance, parameters)
                ?? throw new InvalidOperationException($"Could not find '{name}' on {typeof(TService)}.");
            List<object> metadata =
            [
                .. typeof(TService).GetCustomAttributes(inherit: true),
                .. handler.GetCustomAttributes(inherit: true),
                new HttpMethodMetadata(["POST"], acceptCorsPreflight: true),
            ];
            return (handler.CreateDelegate<TDelegate>(), metadata);
        }
    }

    private Method<TRequest, TResponse> WithStrictParsing<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class
        where TResponse : class
    {
        var deserialize = method.RequestMarshaller.ContextualDeserializer;
        // The request's descriptor from the service's (no reflection): its protobuf name, the one the caller knows
        // (backrest.agent.v1.StartRestoreRequest), and its parser.
        var request = descriptor.FindMethodByName(method.Name).InputType;
        var (messageName, parser) = (request.FullName, request.Parser);
        var marshaller = Marshallers.Create(method.RequestMarshaller.ContextualSerializer, payload =>
        {
            try
            {
                return deserialize(payload);
            }
            catch (InvalidProtocolBufferException ex)
            {
                // From the generated parser (no reflection): an empty message of the request's type.
                var placeholder = (TRequest)parser.ParseFrom([]);
                _rejected.Add(placeholder, ErrorInterceptor.Shorten(
                    $"The request is not a valid {messageName} message: {ex.Message}", ErrorInterceptor.MaxDetailLength));
                return placeholder;
            }
        });
        return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, marshaller, method.ResponseMarshaller);
    }

    private void ThrowIfRejected(object request)
    {
        if (_rejected.TryGetValue(request, out var detail))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, detail));
        }
    }
}
