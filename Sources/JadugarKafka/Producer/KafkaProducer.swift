import CRdKafka
import Jadugar
import JadugarPublisher
import Logging

/// The producing side of one ``KafkaBroker``: an idempotent librdkafka producer fed through the
/// publisher core's ``JadugarPublisher/Batcher``.
///
/// `send` encodes nothing itself: it pushes an ``OutgoingRecord`` into the batcher's ring and
/// awaits its delivery report. The batcher's I/O thread calls `rd_kafka_produceva` for each record
/// of a batch and serves delivery reports with `rd_kafka_poll`, so the librdkafka handle is only
/// ever touched by that one thread.
final class KafkaProducer: Sendable {
    private let batcher: Batcher<OutgoingRecord>

    /// Makes the librdkafka producer on `executor` (a thread of the adapter's own) and starts the
    /// I/O thread, which owns it from then on.
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/invalidArgument`` for a property librdkafka rejects.
    static func open(configuration: KafkaConfiguration, events: EventBroadcaster, logger: Logger, on executor: BlockingExecutor) async throws -> KafkaProducer {
        let context = ProducerContext(events: events, logger: logger)
        let handle = try await executor.run {
            try RdKafkaHandle.make(type: RD_KAFKA_PRODUCER, properties: configuration.producerClientProperties, opaque: context) { conf in
                rd_kafka_conf_set_dr_msg_cb(conf, kafkaDeliveryReport)
                rd_kafka_conf_set_error_cb(conf, kafkaProducerError)
            }
        }
        return KafkaProducer(configuration: configuration, handle: handle, context: context)
    }

    private init(configuration: KafkaConfiguration, handle: RdKafkaHandle, context: ProducerContext) {
        let sink = KafkaProduceSink(handle: handle, context: context, shutdownTimeout: configuration.shutdownTimeout)
        batcher = Batcher(
            configuration: BatcherConfiguration(
                capacity: configuration.publishBufferCapacity,
                maxBatch: configuration.publishMaxBatch,
                backpressure: .suspend,
                threadName: "jadugar-kafka-p"
            ),
            sink: sink
        )
        batcher.start()
    }

    /// Produces one record and returns when the broker acknowledged it (acks=all).
    ///
    /// - Throws: The broker's refusal (``Jadugar/MessagingError`` with librdkafka's code), or
    ///   ``Jadugar/MessagingError/Code/notConnected`` once the producer shuts down.
    func send(_ record: OutgoingRecord) async throws {
        do {
            try await batcher.submit(record)
        } catch let error as PublisherError {
            throw MessagingError(.notConnected, "the Kafka producer is shut down (\(error.code)); the message to '\(record.topic)' was not sent")
        }
    }

    /// Writes what is buffered, waits for the delivery reports (up to the shutdown timeout), fails
    /// the rest, and destroys the librdkafka producer.
    func shutdown() async {
        await batcher.shutdown(drain: true)
    }
}

/// State shared between the sink and librdkafka's callbacks.
///
/// `@unchecked Sendable`: every mutable field is touched only on the batcher's I/O thread, because
/// librdkafka invokes the delivery-report and error callbacks only from `rd_kafka_poll` and
/// `rd_kafka_flush`, which only that thread calls.
final class ProducerContext: RdKafkaOpaque, @unchecked Sendable {
    let events: EventBroadcaster
    /// Delivery tokens handed to librdkafka and not yet reported.
    var pending = Set<UnsafeMutableRawPointer>()
    /// A fatal producer error (idempotence broken); every later produce fails with it.
    var fatal: MessagingError?

    init(events: EventBroadcaster, logger: Logger) {
        self.events = events
        super.init(logger: logger)
    }
}

/// Carries one submitter's completion through librdkafka as the message opaque.
final class DeliveryToken {
    let completion: BatchCompletion
    let topic: String

    init(completion: BatchCompletion, topic: String) {
        self.completion = completion
        self.topic = topic
    }
}

/// The delivery-report callback: resolves the submitter of each message.
private func kafkaDeliveryReport(_ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let message, let opaque, let raw = message.pointee._private else { return }
    let context = Unmanaged<ProducerContext>.fromOpaque(opaque).takeUnretainedValue()
    guard context.pending.remove(raw) != nil else { return }
    // Balances the passRetained in KafkaProduceSink.produce.
    let token = Unmanaged<DeliveryToken>.fromOpaque(raw).takeRetainedValue()
    let err = message.pointee.err
    if err == RD_KAFKA_RESP_ERR_NO_ERROR {
        token.completion.succeed()
    } else {
        token.completion.fail(RdKafkaError.make(err, "Kafka did not take the message for topic '\(token.topic)'"))
    }
}

/// The producer's error callback: connection trouble becomes events; a fatal error is recorded.
private func kafkaProducerError(_ rk: OpaquePointer?, _ err: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque else { return }
    let context = Unmanaged<ProducerContext>.fromOpaque(opaque).takeUnretainedValue()
    let code = rd_kafka_resp_err_t(rawValue: err)
    let text = reason.map { String(cString: $0) } ?? ""
    switch code {
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        context.events.emit(BrokerEvent(kind: .disconnected, broker: "kafka", detail: "producer: \(text)"))
    case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__RESOLVE:
        context.events.emit(BrokerEvent(kind: .reconnecting, broker: "kafka", detail: "producer: \(text)"))
    case RD_KAFKA_RESP_ERR__FATAL:
        var buffer = [CChar](repeating: 0, count: 512)
        let underlying = rk.map { rd_kafka_fatal_error($0, &buffer, buffer.count) } ?? code
        let detail = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        context.fatal = RdKafkaError.make(underlying, "the Kafka producer hit a fatal error and must be recreated (disconnect and connect)", detail: detail.isEmpty ? text : detail, retriable: false)
        context.logger.error("fatal Kafka producer error", metadata: ["jadugar.error": "\(detail.isEmpty ? text : detail)"])
        context.events.emit(BrokerEvent(kind: .error, broker: "kafka", detail: "fatal producer error: \(detail.isEmpty ? text : detail)"))
    default:
        context.events.emit(BrokerEvent(kind: .error, broker: "kafka", detail: "producer: \(RdKafkaError.name(code)) \(text)"))
    }
}

/// Writes the batcher's batches with `rd_kafka_produceva` and resolves them from delivery reports.
///
/// Used only on the batcher's I/O thread.
final class KafkaProduceSink: BatchSink {
    typealias Item = OutgoingRecord

    private var handle: RdKafkaHandle?
    private let context: ProducerContext
    private let shutdownTimeout: Duration
    private var values: UnsafeMutablePointer<rd_kafka_vu_t>
    private var valuesCapacity: Int
    /// A valid address for empty payloads and keys: a null pointer would make a tombstone.
    private let empty = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

    init(handle: RdKafkaHandle, context: ProducerContext, shutdownTimeout: Duration) {
        self.handle = handle
        self.context = context
        self.shutdownTimeout = shutdownTimeout
        valuesCapacity = 16
        values = .allocate(capacity: valuesCapacity)
        values.initialize(repeating: rd_kafka_vu_t(), count: valuesCapacity)
    }

    deinit {
        values.deallocate()
        empty.deallocate()
    }

    func write(_ batch: inout Batch<OutgoingRecord>) throws {
        guard let handle else {
            throw MessagingError(.notConnected, "the Kafka producer is shut down")
        }
        for index in 0..<batch.count {
            let completion = batch.takeCompletion(at: index)
            produce(batch[index], completion, handle.pointer)
        }
        // Serve delivery reports that are already in.
        rd_kafka_poll(handle.pointer, 0)
    }

    func idle() -> Duration? {
        guard let handle else { return nil }
        if !context.pending.isEmpty {
            // Block briefly in librdkafka's queue: it wakes as soon as a report arrives, and the
            // batcher looks at its ring again within a millisecond.
            rd_kafka_poll(handle.pointer, 1)
            return .zero
        }
        rd_kafka_poll(handle.pointer, 0)
        // Wake now and then to serve error callbacks (connection events).
        return .seconds(1)
    }

    func close() {
        guard let handle else { return }
        rd_kafka_flush(handle.pointer, Int32(clamping: shutdownTimeout.wholeMilliseconds))
        if !context.pending.isEmpty {
            rd_kafka_purge(handle.pointer, jadugar_rd_kafka_purge_all())
            rd_kafka_poll(handle.pointer, 0)
            rd_kafka_flush(handle.pointer, 1000)
        }
        handle.destroy()
        self.handle = nil
        // Whatever librdkafka never reported fails now rather than waiting forever.
        for raw in context.pending {
            let token = Unmanaged<DeliveryToken>.fromOpaque(raw).takeRetainedValue()
            token.completion.fail(MessagingError(.closed, "the Kafka producer shut down before the broker confirmed the message to '\(token.topic)'", isRetriable: true))
        }
        context.pending.removeAll()
    }

    private func ensureCapacity(_ count: Int) {
        guard count > valuesCapacity else { return }
        values.deallocate()
        valuesCapacity = max(count, valuesCapacity * 2)
        values = .allocate(capacity: valuesCapacity)
        values.initialize(repeating: rd_kafka_vu_t(), count: valuesCapacity)
    }

    private func produce(_ record: OutgoingRecord, _ completion: BatchCompletion, _ rk: OpaquePointer) {
        if let fatal = context.fatal {
            completion.fail(fatal)
            return
        }
        ensureCapacity(7 + record.headers.count)
        let raw = Unmanaged.passRetained(DeliveryToken(completion: completion, topic: record.topic)).toOpaque()
        var retries = 0
        while true {
            let error: OpaquePointer? = record.meta.withUnsafeBufferPointer { meta in
                record.payload.withUnsafeBufferPointer { payload in
                    let base = UnsafeRawPointer(meta.baseAddress!)
                    var count = 0
                    func next() -> UnsafeMutablePointer<rd_kafka_vu_t> {
                        defer { count += 1 }
                        return values + count
                    }
                    var slot = next()
                    slot.pointee.vtype = RD_KAFKA_VTYPE_TOPIC
                    slot.pointee.u.cstr = base.assumingMemoryBound(to: CChar.self)
                    slot = next()
                    slot.pointee.vtype = RD_KAFKA_VTYPE_VALUE
                    slot.pointee.u.mem.ptr = payload.isEmpty ? empty : UnsafeMutableRawPointer(mutating: payload.baseAddress!)
                    slot.pointee.u.mem.size = payload.count
                    if let keyRange = record.keyRange {
                        slot = next()
                        slot.pointee.vtype = RD_KAFKA_VTYPE_KEY
                        slot.pointee.u.mem.ptr = keyRange.isEmpty ? empty : UnsafeMutableRawPointer(mutating: base + keyRange.lowerBound)
                        slot.pointee.u.mem.size = keyRange.count
                    }
                    slot = next()
                    slot.pointee.vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    slot.pointee.u.i = jadugar_rd_kafka_msg_f_copy()
                    slot = next()
                    slot.pointee.vtype = RD_KAFKA_VTYPE_TIMESTAMP
                    slot.pointee.u.i64 = record.timestamp
                    slot = next()
                    slot.pointee.vtype = RD_KAFKA_VTYPE_OPAQUE
                    slot.pointee.u.ptr = raw
                    if record.partition >= 0 {
                        slot = next()
                        slot.pointee.vtype = RD_KAFKA_VTYPE_PARTITION
                        slot.pointee.u.i32 = record.partition
                    }
                    for header in record.headers {
                        slot = next()
                        slot.pointee.vtype = RD_KAFKA_VTYPE_HEADER
                        slot.pointee.u.header.name = (base + header.name).assumingMemoryBound(to: CChar.self)
                        slot.pointee.u.header.val = header.length == 0 ? UnsafeRawPointer(empty) : base + header.value
                        slot.pointee.u.header.size = header.length
                    }
                    return rd_kafka_produceva(rk, values, count)
                }
            }
            guard let error else {
                context.pending.insert(raw)
                return
            }
            if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL, retries < 1000 {
                // librdkafka's own queue is full: serve delivery reports to make room, then retry.
                rd_kafka_error_destroy(error)
                retries += 1
                rd_kafka_poll(rk, 10)
                continue
            }
            Unmanaged<DeliveryToken>.fromOpaque(raw).release()
            completion.fail(RdKafkaError.consume(error, "librdkafka refused the message for topic '\(record.topic)'"))
            return
        }
    }
}
