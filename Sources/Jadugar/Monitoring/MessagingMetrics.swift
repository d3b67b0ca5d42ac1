import CoreMetrics
import Metrics
import Synchronization

/// The metric names Jadugar records through swift-metrics, with their dimensions.
///
/// Bootstrap any swift-metrics backend (Prometheus, StatsD, OpenTelemetry) and these appear:
///
/// | name | kind | dimensions |
/// |---|---|---|
/// | `jadugar_published_total` | counter | broker, topic |
/// | `jadugar_publish_errors_total` | counter | broker, topic, code |
/// | `jadugar_publish_duration_seconds` | timer | broker, topic |
/// | `jadugar_delivered_total` | counter | broker, queue, group |
/// | `jadugar_acked_total` | counter | broker, queue, group |
/// | `jadugar_retried_total` | counter | broker, queue, group |
/// | `jadugar_dead_lettered_total` | counter | broker, queue, group, reason |
/// | `jadugar_handler_errors_total` | counter | broker, queue, group, code |
/// | `jadugar_in_flight` | gauge | broker, queue, group |
/// | `jadugar_processing_duration_seconds` | timer | broker, queue, group |
/// | `jadugar_end_to_end_latency_seconds` | timer | broker, queue, group |
/// | `jadugar_queue_depth` | gauge | broker, queue, state (`ready`, `unacked`, `delayed`) |
/// | `jadugar_queue_consumers` | gauge | broker, queue |
///
/// ```swift
/// MetricsSystem.bootstrap(PrometheusMetricsFactory())
/// let manager = try MessageManager(options: MessageOptions(url: "redis://127.0.0.1:6379"))
/// ```
public enum MessagingMetrics {
    /// Label names, in one place.
    public enum Name {
        public static let published = "jadugar_published_total"
        public static let publishErrors = "jadugar_publish_errors_total"
        public static let publishDuration = "jadugar_publish_duration_seconds"
        public static let delivered = "jadugar_delivered_total"
        public static let acked = "jadugar_acked_total"
        public static let retried = "jadugar_retried_total"
        public static let deadLettered = "jadugar_dead_lettered_total"
        public static let handlerErrors = "jadugar_handler_errors_total"
        public static let inFlight = "jadugar_in_flight"
        public static let processingDuration = "jadugar_processing_duration_seconds"
        public static let endToEndLatency = "jadugar_end_to_end_latency_seconds"
        public static let queueDepth = "jadugar_queue_depth"
        public static let queueConsumers = "jadugar_queue_consumers"
    }

    /// Creating a metric asks the backend for it; this keeps one per label and dimensions, bounded,
    /// so the publish path pays a dictionary lookup instead.
    private static let cache = Mutex<[String: any Sendable]>([:])
    private static let cacheLimit = 10_000

    static func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        cached(label, dimensions) { Counter(label: label, dimensions: dimensions) }
    }

    static func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        cached(label, dimensions) { Gauge(label: label, dimensions: dimensions) }
    }

    static func meter(_ label: String, _ dimensions: [(String, String)]) -> Meter {
        cached(label, dimensions) { Meter(label: label, dimensions: dimensions) }
    }

    static func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        cached(label, dimensions) { Timer(label: label, dimensions: dimensions, preferredDisplayUnit: .seconds) }
    }

    private static func cached<M: Sendable>(_ label: String, _ dimensions: [(String, String)], make: () -> M) -> M {
        let key = label + "|" + dimensions.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        return cache.withLock { cache in
            if let metric = cache[key] as? M { return metric }
            if cache.count >= cacheLimit { cache.removeAll() }
            let metric = make()
            cache[key] = metric
            return metric
        }
    }

    /// Records a queue's counts from the broker as `jadugar_queue_depth` and `jadugar_queue_consumers`.
    public static func record(_ info: QueueInfo, broker: String) {
        gauge(Name.queueDepth, [("broker", broker), ("queue", info.name), ("state", "ready")]).record(info.ready)
        gauge(Name.queueDepth, [("broker", broker), ("queue", info.name), ("state", "unacked")]).record(info.unacknowledged)
        gauge(Name.queueDepth, [("broker", broker), ("queue", info.name), ("state", "delayed")]).record(info.delayed)
        gauge(Name.queueConsumers, [("broker", broker), ("queue", info.name)]).record(info.consumers)
    }
}

/// Polls the broker for queue depths and records them as gauges, until cancelled.
///
/// ```swift
/// let monitor = QueueDepthMonitor(broker: manager.broker, queues: ["emails", "emails.dlq"], interval: .seconds(5))
/// let task = Task { await monitor.run() }
/// ```
public struct QueueDepthMonitor: Sendable {
    /// The broker asked.
    public let broker: any MessageBroker
    /// The queues watched.
    public let queues: [String]
    /// How often to ask.
    public let interval: Duration

    /// Creates a monitor.
    public init(broker: any MessageBroker, queues: [String], interval: Duration = .seconds(5)) {
        self.broker = broker
        self.queues = queues
        self.interval = interval
    }

    /// Records every queue's depth once; returns the counts it read (queues that fail are left out).
    @discardableResult
    public func sample() async -> [QueueInfo] {
        var infos: [QueueInfo] = []
        for queue in queues {
            if let info = try? await broker.queueInfo(queue) {
                MessagingMetrics.record(info, broker: broker.name)
                infos.append(info)
            }
        }
        return infos
    }

    /// Samples every ``interval`` until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            await sample()
            try? await Task.sleep(for: interval)
        }
    }
}
