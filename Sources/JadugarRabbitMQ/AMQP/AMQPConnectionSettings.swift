import Jadugar

/// What one AMQP connection needs to open, derived from a ``RabbitMQConfiguration``.
struct AMQPConnectionSettings: Sendable {
    var endpoints: [RabbitMQConfiguration.Endpoint]
    var virtualHost: String
    var user: String
    var password: String
    var tls: RabbitMQTLSConfiguration?
    var heartbeatSeconds: Int
    var connectTimeout: Duration
    var operationTimeout: Duration
    var frameMax: Int
    var channelMax: Int
    /// The `connection_name` client property, which `rabbitmqctl list_connections` shows.
    var connectionName: String

    init(_ configuration: RabbitMQConfiguration, role: String) {
        endpoints = configuration.endpoints
        virtualHost = configuration.virtualHost
        user = configuration.user
        password = configuration.password
        tls = configuration.tls
        heartbeatSeconds = max(0, Int(configuration.heartbeat.components.seconds))
        connectTimeout = configuration.connectTimeout
        operationTimeout = configuration.operationTimeout
        frameMax = configuration.frameMax
        channelMax = configuration.channelMax
        connectionName = "\(configuration.connectionName) (\(role))"
    }

    /// The endpoints and vhost, without credentials: safe for logs and errors.
    var redactedTarget: String {
        let scheme = tls == nil ? "amqp" : "amqps"
        let hosts = endpoints.map { "\($0.host):\($0.port)" }.joined(separator: ",")
        return "\(scheme)://\(hosts)/\(virtualHost == "/" ? "%2f" : virtualHost)"
    }
}
