import Jadugar

/// Settings of a ``RabbitMQBroker``: where to connect, how to log in, and how the adapter behaves.
///
/// Build it from a URL and adjust fields as needed:
///
/// ```swift
/// var configuration = try RabbitMQConfiguration(url: "amqp://app:secret@127.0.0.1:5672/orders")
/// configuration.heartbeat = .seconds(5)
/// let broker = RabbitMQBroker(configuration: configuration)
/// ```
///
/// - Important: ``password`` never appears in a description, log line or error.
public struct RabbitMQConfiguration: Sendable, CustomStringConvertible {
    /// One broker node.
    public struct Endpoint: Sendable, Hashable {
        /// Host name or IP address.
        public var host: String
        /// TCP port.
        public var port: Int

        /// Creates an endpoint.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// The nodes to try, in order, on every (re)connect. Default: `127.0.0.1:5672`.
    public var endpoints: [Endpoint]
    /// The virtual host. Default: `"/"`.
    public var virtualHost: String
    /// The user name. Default: `"guest"`.
    public var user: String
    /// The password. Default: `"guest"`. Never printed.
    public var password: String
    /// TLS settings; `nil` for plain TCP. Default: `nil` (an `amqps://` URL sets it).
    public var tls: RabbitMQTLSConfiguration?
    /// The heartbeat interval proposed to the broker; zero disables heartbeats. Default: 10 seconds.
    public var heartbeat: Duration
    /// How long opening a connection (TCP, TLS and login) may take. Default: 5 seconds.
    public var connectTimeout: Duration
    /// How long one broker round trip (declare, bind, consume ...) may take before the connection
    /// is considered broken. Default: 30 seconds.
    public var operationTimeout: Duration
    /// Reconnection after the connection is lost. Default: ``RabbitMQReconnectPolicy/default``.
    public var reconnect: RabbitMQReconnectPolicy
    /// The durable topic exchange that `publish` and `subscribe` use when the options name none;
    /// declared on connect. Default: `"jadugar"`.
    public var defaultExchange: String
    /// The largest payload `publish` accepts, in bytes. Default: 16 MiB (RabbitMQ's own limit is 128 MiB).
    public var maxPayloadBytes: Int
    /// Publisher confirms: a publish returns when the broker acknowledged it (and fails on a nack or
    /// an unroutable mandatory message). With `false` it returns once the message is written to the socket. Default: `true`.
    public var confirms: Bool
    /// How many publishes may wait in the publish buffer before `publish` waits for room. Default: 4096.
    public var publishBufferCapacity: Int
    /// The most messages the publisher writes in one burst before reading confirms. Default: 256.
    public var publishMaxBatch: Int
    /// How long the publisher waits, after the first message of a burst, for more to join it.
    /// Longer bursts cost fewer system calls and wake-ups per message; zero writes at once. Default: 0.
    public var publishLinger: Duration
    /// The largest frame proposed to the broker, in bytes. Default: 131072.
    public var frameMax: Int
    /// The most channels proposed to the broker (0: the broker's limit). Default: 0.
    public var channelMax: Int
    /// The name the broker shows for the connections (`rabbitmqctl list_connections name client_properties`).
    /// Default: `"jadugar"`.
    public var connectionName: String
    /// How long `disconnect` waits for outstanding publisher confirms. Default: 5 seconds.
    public var shutdownTimeout: Duration

    /// Creates a configuration. Every parameter has the default named on its property.
    public init(
        endpoints: [Endpoint] = [Endpoint(host: "127.0.0.1", port: 5672)],
        virtualHost: String = "/",
        user: String = "guest",
        password: String = "guest",
        tls: RabbitMQTLSConfiguration? = nil,
        heartbeat: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(5),
        operationTimeout: Duration = .seconds(30),
        reconnect: RabbitMQReconnectPolicy = .default,
        defaultExchange: String = "jadugar",
        maxPayloadBytes: Int = 16 << 20,
        confirms: Bool = true,
        publishBufferCapacity: Int = 4096,
        publishMaxBatch: Int = 256,
        publishLinger: Duration = .zero,
        frameMax: Int = 131_072,
        channelMax: Int = 0,
        connectionName: String = "jadugar",
        shutdownTimeout: Duration = .seconds(5)
    ) {
        self.endpoints = endpoints
        self.virtualHost = virtualHost
        self.user = user
        self.password = password
        self.tls = tls
        self.heartbeat = heartbeat
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.reconnect = reconnect
        self.defaultExchange = defaultExchange
        self.maxPayloadBytes = maxPayloadBytes
        self.confirms = confirms
        self.publishBufferCapacity = publishBufferCapacity
        self.publishMaxBatch = publishMaxBatch
        self.publishLinger = publishLinger
        self.frameMax = frameMax
        self.channelMax = channelMax
        self.connectionName = connectionName
        self.shutdownTimeout = shutdownTimeout
    }

    /// Reads a configuration from an `amqp://` or `amqps://` URL.
    ///
    /// `amqp://user:password@host:port[,host:port...]/vhost?query`. The vhost is percent-decoded
    /// (`%2f` is `/`); without a path it is `/`. The default ports are 5672 and 5671 (amqps). Query
    /// parameters: `heartbeat` (seconds), `connection_timeout` (milliseconds), `name` (connection
    /// name), `exchange` (default exchange), and for TLS `cacertfile`, `certfile`, `keyfile`,
    /// `verify=verify_none|verify_peer`, `auth_mechanism=external`.
    ///
    /// ```swift
    /// let configuration = try RabbitMQConfiguration(url: "amqps://app:pw@mq.example.com/prod?cacertfile=/etc/ca.pem")
    /// ```
    ///
    /// - Throws: ``MessagingError`` with ``MessagingError/Code/invalidURL`` or
    ///   ``MessagingError/Code/unsupportedScheme``; the message never contains the password.
    public init(url: String) throws {
        try self.init(url: BrokerURL(url))
    }

    /// Reads a configuration from a parsed URL; see ``init(url:)-(String)``.
    public init(url: BrokerURL) throws {
        self.init()
        let secure: Bool
        switch url.scheme {
        case "amqp": secure = false
        case "amqps": secure = true
        default:
            throw MessagingError(.unsupportedScheme, "'\(url.redacted)' is not a RabbitMQ URL; use amqp:// or amqps://")
        }
        let defaultPort = secure ? 5671 : 5672
        if !url.hosts.isEmpty {
            endpoints = url.hosts.map { Endpoint(host: $0.host, port: $0.port ?? defaultPort) }
        } else {
            endpoints = [Endpoint(host: "127.0.0.1", port: defaultPort)]
        }
        virtualHost = url.path.isEmpty ? "/" : url.path
        if let user = url.user { self.user = user }
        if let password = url.password { self.password = password }
        let query = url.query
        if let text = query["heartbeat"] {
            guard let seconds = Int(text), seconds >= 0 else {
                throw MessagingError(.invalidURL, "'\(url.redacted)': heartbeat must be a whole number of seconds, got '\(text)'")
            }
            heartbeat = .seconds(seconds)
        }
        if let text = query["connection_timeout"] {
            guard let milliseconds = Int(text), milliseconds > 0 else {
                throw MessagingError(.invalidURL, "'\(url.redacted)': connection_timeout must be a positive number of milliseconds, got '\(text)'")
            }
            connectTimeout = .milliseconds(milliseconds)
        }
        if let name = query["name"], !name.isEmpty { connectionName = name }
        if let exchange = query["exchange"], !exchange.isEmpty { defaultExchange = exchange }
        if secure {
            var tls = RabbitMQTLSConfiguration()
            tls.caCertificatePath = query["cacertfile"]
            tls.clientCertificatePath = query["certfile"]
            tls.clientKeyPath = query["keyfile"]
            if let verify = query["verify"] {
                switch verify {
                case "verify_none": tls.verifyPeer = false
                case "verify_peer": tls.verifyPeer = true
                default: throw MessagingError(.invalidURL, "'\(url.redacted)': verify must be verify_peer or verify_none, got '\(verify)'")
                }
            }
            if let mechanism = query["auth_mechanism"] {
                switch mechanism.lowercased() {
                case "external": tls.useExternalAuthentication = true
                case "plain": tls.useExternalAuthentication = false
                default: throw MessagingError(.invalidURL, "'\(url.redacted)': auth_mechanism must be plain or external, got '\(mechanism)'")
                }
            }
            self.tls = tls
        } else if query["cacertfile"] != nil || query["certfile"] != nil {
            throw MessagingError(.invalidURL, "'\(url.redacted)' names TLS files but is not an amqps:// URL")
        }
    }

    /// The target without credentials: `amqp://127.0.0.1:5672/%2f`.
    public var description: String {
        let scheme = tls == nil ? "amqp" : "amqps"
        let hosts = endpoints.map { "\($0.host):\($0.port)" }.joined(separator: ",")
        return "\(scheme)://\(user):***@\(hosts)/\(virtualHost == "/" ? "%2f" : virtualHost)"
    }

    func validate() throws {
        if endpoints.isEmpty { throw MessagingError(.invalidArgument, "RabbitMQConfiguration.endpoints is empty") }
        if publishBufferCapacity < 1 { throw MessagingError(.invalidArgument, "publishBufferCapacity must be at least 1, got \(publishBufferCapacity)") }
        if publishLinger < .zero { throw MessagingError(.invalidArgument, "publishLinger must not be negative, got \(publishLinger)") }
        if publishMaxBatch < 1 { throw MessagingError(.invalidArgument, "publishMaxBatch must be at least 1, got \(publishMaxBatch)") }
        if heartbeat < .zero { throw MessagingError(.invalidArgument, "heartbeat must not be negative, got \(heartbeat)") }
        if frameMax < 4096 { throw MessagingError(.invalidArgument, "frameMax must be at least 4096 (AMQP's minimum), got \(frameMax)") }
        try TopicPattern.validateName(defaultExchange, kind: "default exchange name")
    }
}

/// TLS settings for `amqps://` connections (rabbitmq-c's OpenSSL socket).
///
/// Certificate verification is on by default: the broker's certificate must chain to
/// ``caCertificatePath`` and name the host connected to.
///
/// ```swift
/// var tls = RabbitMQTLSConfiguration(caCertificatePath: "/etc/rabbitmq/ca.pem")
/// tls.clientCertificatePath = "/etc/app/client.pem"
/// tls.clientKeyPath = "/etc/app/client.key"
/// ```
public struct RabbitMQTLSConfiguration: Sendable, Hashable {
    /// PEM file of the certificate authorities to trust. Default: `nil` (OpenSSL's default store, as rabbitmq-c sets it up).
    public var caCertificatePath: String?
    /// PEM file of a client certificate to present. Default: `nil`.
    public var clientCertificatePath: String?
    /// PEM file of the client certificate's private key. Default: `nil`.
    public var clientKeyPath: String?
    /// Verify the broker's certificate chain. Default: `true`.
    public var verifyPeer: Bool
    /// Verify that the certificate names the host connected to. Default: `true`.
    public var verifyHostname: Bool
    /// Log in with SASL EXTERNAL (the client certificate names the user) instead of PLAIN. Default: `false`.
    public var useExternalAuthentication: Bool

    /// Creates TLS settings. Every parameter has the default named on its property.
    public init(
        caCertificatePath: String? = nil,
        clientCertificatePath: String? = nil,
        clientKeyPath: String? = nil,
        verifyPeer: Bool = true,
        verifyHostname: Bool = true,
        useExternalAuthentication: Bool = false
    ) {
        self.caCertificatePath = caCertificatePath
        self.clientCertificatePath = clientCertificatePath
        self.clientKeyPath = clientKeyPath
        self.verifyPeer = verifyPeer
        self.verifyHostname = verifyHostname
        self.useExternalAuthentication = useExternalAuthentication
    }
}

/// How a lost connection is re-established: exponential backoff between attempts.
///
/// ```swift
/// configuration.reconnect = RabbitMQReconnectPolicy(initialDelay: .milliseconds(50), maxDelay: .seconds(2))
/// ```
public struct RabbitMQReconnectPolicy: Sendable, Hashable {
    /// Whether to reconnect at all. Default: `true`.
    public var enabled: Bool
    /// The wait before the first attempt. Default: 100 milliseconds.
    public var initialDelay: Duration
    /// The longest wait between attempts (the wait doubles each time). Default: 5 seconds.
    public var maxDelay: Duration

    /// Creates a policy. Every parameter has the default named on its property.
    public init(enabled: Bool = true, initialDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5)) {
        self.enabled = enabled
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
    }

    /// Reconnect with the defaults.
    public static let `default` = RabbitMQReconnectPolicy()
    /// Never reconnect: a lost connection stays lost.
    public static let disabled = RabbitMQReconnectPolicy(enabled: false)

    /// The wait before attempt `attempt` (1-based).
    func delay(forAttempt attempt: Int) -> Duration {
        var delay = initialDelay
        for _ in 1..<max(attempt, 1) {
            delay = min(delay * 2, maxDelay)
            if delay >= maxDelay { break }
        }
        return min(delay, maxDelay)
    }
}
