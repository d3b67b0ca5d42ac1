import CRdKafka
import Foundation
import Jadugar
import Logging

/// A topic to create.
struct TopicSpec: Sendable, Hashable {
    var name: String
    var partitions: Int
    var replicationFactor: Int
    var config: [String: String] = [:]
}

/// What a scan of a queue's topics found between the group's committed offsets and the end.
struct ScanResult: Sendable {
    struct Record: Sendable {
        var position: RecordPosition
        /// For retry records, when they are due (milliseconds since 1970).
        var retryAt: Int64?
    }

    /// Records the queue would deliver.
    var records: [Record]
    /// Per partition, the last offset read.
    var last: [TopicPartition: Int64]
}

/// The admin side of one ``KafkaBroker``: a librdkafka client that never produces, used only on
/// its own thread, for topic administration, metadata, health checks and queue scans.
final class KafkaAdmin: Sendable {
    /// The admin thread; the broker also makes its producer client here.
    let executor: BlockingExecutor
    private let handle: RdKafkaHandle
    let configuration: KafkaConfiguration
    let logger: Logger

    private init(executor: BlockingExecutor, handle: RdKafkaHandle, configuration: KafkaConfiguration, logger: Logger) {
        self.executor = executor
        self.handle = handle
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts the admin thread and makes the admin client on it.
    static func open(configuration: KafkaConfiguration, logger: Logger) async throws -> KafkaAdmin {
        let executor = BlockingExecutor(name: "jadugar-kafka-a")
        do {
            let handle = try await executor.run {
                try RdKafkaHandle.make(type: RD_KAFKA_PRODUCER, properties: configuration.adminClientProperties, opaque: RdKafkaOpaque(logger: logger))
            }
            return KafkaAdmin(executor: executor, handle: handle, configuration: configuration, logger: logger)
        } catch {
            executor.stop()
            throw error
        }
    }

    /// Destroys the client on the admin thread after the queued requests, then ends the thread.
    func close() async {
        let handle = self.handle
        try? await executor.run { handle.destroy() }
        executor.stop()
    }

    private var timeoutMilliseconds: Int32 { Int32(clamping: configuration.operationTimeout.wholeMilliseconds) }

    // MARK: Metadata

    /// One round trip for the brokers' metadata; returns how long it took.
    func ping() async throws -> Duration {
        let (handle, timeout) = (self.handle, timeoutMilliseconds)
        return try await executor.run {
            let start = ContinuousClock.now
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(handle.pointer, 0, nil, &metadata, timeout)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                throw RdKafkaError.make(err, "the Kafka cluster did not answer a metadata request")
            }
            defer { rd_kafka_metadata_destroy(metadata) }
            guard metadata.pointee.broker_cnt > 0 else {
                throw MessagingError(.connectionFailed, "the Kafka cluster's metadata lists no broker")
            }
            return ContinuousClock.now - start
        }
    }

    /// Every topic under the configured prefix (by its Jadugar name) and its partition count.
    func topics() async throws -> [String: Int] {
        let (handle, timeout, configuration) = (self.handle, timeoutMilliseconds, self.configuration)
        return try await executor.run {
            var topics: [String: Int] = [:]
            for (name, count) in try Self.topics(handle.pointer, timeout: timeout) {
                if let jadugar = configuration.jadugarName(name) { topics[jadugar] = count }
            }
            return topics
        }
    }

    /// The partition counts of the named topics (Jadugar names) that exist, asked topic by topic:
    /// cheaper for the broker than all-topics metadata on a cluster with thousands of topics.
    func partitions(of names: [String]) async throws -> [String: Int] {
        guard !names.isEmpty else { return [:] }
        let (handle, timeout, configuration) = (self.handle, timeoutMilliseconds, self.configuration)
        return try await executor.run {
            var counts: [String: Int] = [:]
            for name in Set(names) {
                if let count = try Self.partitions(handle.pointer, topic: configuration.kafkaName(name), timeout: timeout) { counts[name] = count }
            }
            return counts
        }
    }

    /// The partition count of one topic, or `nil` when it does not exist. The client must not
    /// create topics on metadata requests (`allow.auto.create.topics=false`).
    static func partitions(_ rk: OpaquePointer, topic name: String, timeout: Int32) throws -> Int? {
        guard let topic = rd_kafka_topic_new(rk, name, nil) else {
            throw MessagingError(.invalidTopic, "librdkafka refused the topic name '\(name)'")
        }
        defer { rd_kafka_topic_destroy(topic) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 0, topic, &metadata, timeout)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw RdKafkaError.make(err, "reading the metadata of topic '\(name)' failed")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let entry = metadata.pointee.topics[index]
            guard String(cString: entry.topic) == name else { continue }
            if entry.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || entry.err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC { return nil }
            guard entry.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw RdKafkaError.make(entry.err, "reading the metadata of topic '\(name)' failed")
            }
            return entry.partition_cnt > 0 ? Int(entry.partition_cnt) : nil
        }
        return nil
    }

    static func topics(_ rk: OpaquePointer, timeout: Int32) throws -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 1, nil, &metadata, timeout)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw RdKafkaError.make(err, "reading the topics of the Kafka cluster failed")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var topics: [String: Int] = [:]
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let topic = metadata.pointee.topics[index]
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            topics[String(cString: topic.topic)] = Int(topic.partition_cnt)
        }
        return topics
    }

    // MARK: Topics

    /// Creates topics; with `ignoreExisting`, a topic that exists already is not an error.
    ///
    /// - Throws: The first topic error, with the broker's code (``Jadugar/MessagingError/Code/alreadyExists`` ...).
    func createTopics(_ specs: [TopicSpec], ignoreExisting: Bool) async throws {
        guard !specs.isEmpty else { return }
        let (handle, timeout, configuration) = (self.handle, timeoutMilliseconds, self.configuration)
        try await executor.run {
            let rk = handle.pointer
            var errorText = [CChar](repeating: 0, count: 512)
            var newTopics: [OpaquePointer?] = []
            defer { rd_kafka_NewTopic_destroy_array(&newTopics, newTopics.count) }
            for spec in specs {
                guard let topic = rd_kafka_NewTopic_new(configuration.kafkaName(spec.name), Int32(spec.partitions), Int32(spec.replicationFactor), &errorText, errorText.count) else {
                    throw MessagingError(.invalidArgument, "topic '\(spec.name)': \(String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
                }
                newTopics.append(topic)
                for (key, value) in spec.config.sorted(by: { $0.key < $1.key }) {
                    let err = rd_kafka_NewTopic_set_config(topic, key, value)
                    if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw RdKafkaError.make(err, "topic '\(spec.name)': config \(key)=\(value)") }
                }
            }
            try Self.admin(rk, operation: RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout: timeout, what: "creating topics \(specs.map(\.name))") { options, queue in
                rd_kafka_CreateTopics(rk, &newTopics, newTopics.count, options, queue)
            } results: { event in
                var count = 0
                let result = rd_kafka_event_CreateTopics_result(event)
                guard let topics = rd_kafka_CreateTopics_result_topics(result, &count) else { return }
                for index in 0..<count {
                    guard let topic = topics[index] else { continue }
                    let err = rd_kafka_topic_result_error(topic)
                    if err == RD_KAFKA_RESP_ERR_NO_ERROR || (ignoreExisting && err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) { continue }
                    let name = String(cString: rd_kafka_topic_result_name(topic))
                    let text = rd_kafka_topic_result_error_string(topic).map { String(cString: $0) }
                    throw RdKafkaError.make(err, "creating topic '\(name)' failed", detail: text)
                }
            }
        }
    }

    /// Deletes topics; with `ignoreMissing`, a topic that does not exist is not an error.
    func deleteTopics(_ names: [String], ignoreMissing: Bool) async throws {
        guard !names.isEmpty else { return }
        let (handle, timeout, configuration) = (self.handle, timeoutMilliseconds, self.configuration)
        try await executor.run {
            let rk = handle.pointer
            var deletes: [OpaquePointer?] = names.map { rd_kafka_DeleteTopic_new(configuration.kafkaName($0)) }
            defer { rd_kafka_DeleteTopic_destroy_array(&deletes, deletes.count) }
            try Self.admin(rk, operation: RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout: timeout, what: "deleting topics \(names)") { options, queue in
                rd_kafka_DeleteTopics(rk, &deletes, deletes.count, options, queue)
            } results: { event in
                var count = 0
                let result = rd_kafka_event_DeleteTopics_result(event)
                guard let topics = rd_kafka_DeleteTopics_result_topics(result, &count) else { return }
                for index in 0..<count {
                    guard let topic = topics[index] else { continue }
                    let err = rd_kafka_topic_result_error(topic)
                    if err == RD_KAFKA_RESP_ERR_NO_ERROR || (ignoreMissing && err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) { continue }
                    let name = String(cString: rd_kafka_topic_result_name(topic))
                    let text = rd_kafka_topic_result_error_string(topic).map { String(cString: $0) }
                    throw RdKafkaError.make(err, "deleting topic '\(name)' failed", detail: text)
                }
            }
        }
    }

    /// Runs one admin request on a private queue and hands its result event to `results`.
    private static func admin(
        _ rk: OpaquePointer,
        operation: rd_kafka_admin_op_t,
        timeout: Int32,
        what: String,
        send: (OpaquePointer, OpaquePointer) -> Void,
        results: (OpaquePointer) throws -> Void
    ) throws {
        guard let queue = rd_kafka_queue_new(rk) else { throw MessagingError(.brokerError, "\(what): librdkafka could not make a queue") }
        defer { rd_kafka_queue_destroy(queue) }
        guard let options = rd_kafka_AdminOptions_new(rk, operation) else { throw MessagingError(.brokerError, "\(what): librdkafka could not make admin options") }
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errorText = [CChar](repeating: 0, count: 512)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeout, &errorText, errorText.count)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeout, &errorText, errorText.count)
        send(options, queue)
        guard let event = rd_kafka_queue_poll(queue, timeout + 1000) else {
            throw MessagingError(.timeout, "\(what): no answer within \(timeout) ms")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw RdKafkaError.make(err, what, detail: rd_kafka_event_error_string(event).map { String(cString: $0) })
        }
        try results(event)
    }

    // MARK: Scans

    /// Reads a queue's topics from the group's committed offsets (or the beginning) to their end,
    /// with a throwaway consumer that assigns partitions itself and never joins the group.
    ///
    /// Kafka's end offsets (high watermarks) are not trusted, because some Kafka-compatible
    /// brokers report stale ones; the scan reads until each partition reports its end instead.
    ///
    /// - Parameters:
    ///   - topics: Jadugar topic names (the prefix is added here).
    ///   - group: The Kafka group whose committed offsets to start from; `nil` starts at the beginning.
    ///   - commitEnd: Commit the end offsets for `group` (a purge without a local consumer).
    func scan(topics: [String], group: String?, spec: ConsumerSpec, commitEnd: Bool) async throws -> ScanResult {
        let configuration = self.configuration
        let logger = self.logger
        let timeout = timeoutMilliseconds
        let partitionsByTopic = try await self.partitions(of: topics)
        return try await executor.run {
            var properties = configuration.consumerClientProperties(group: group ?? "jadugar-scan-\(Message.makeID())")
            properties["enable.partition.eof"] = "true"
            properties["auto.offset.reset"] = "earliest"
            let scanner = try RdKafkaHandle.make(type: RD_KAFKA_CONSUMER, properties: properties, opaque: RdKafkaOpaque(logger: logger))
            return try withExtendedLifetime(scanner) { try Self.scan(scanner.pointer, topics: topics, group: group, spec: spec, commitEnd: commitEnd, partitionsByTopic: partitionsByTopic, configuration: configuration, timeout: timeout) }
        }
    }

    private static func scan(
        _ rk: OpaquePointer, topics: [String], group: String?, spec: ConsumerSpec, commitEnd: Bool,
        partitionsByTopic: [String: Int], configuration: KafkaConfiguration, timeout: Int32
    ) throws -> ScanResult {
            defer { rd_kafka_consumer_close(rk) }
            guard let list = rd_kafka_topic_partition_list_new(8) else { return ScanResult(records: [], last: [:]) }
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for topic in topics {
                for partition in 0..<Int32(partitionsByTopic[topic] ?? 0) {
                    rd_kafka_topic_partition_list_add(list, configuration.kafkaName(topic), partition)
                }
            }
            guard list.pointee.cnt > 0 else { return ScanResult(records: [], last: [:]) }
            if group != nil {
                let err = rd_kafka_committed(rk, list, timeout)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw RdKafkaError.make(err, "reading the committed offsets of group '\(group!)' failed") }
            }
            var pending = Set<TopicPartition>()
            for index in 0..<Int(list.pointee.cnt) {
                if list.pointee.elems[index].offset < 0 { list.pointee.elems[index].offset = jadugar_rd_kafka_offset_beginning() }
                pending.insert(TopicPartition(topic: String(cString: list.pointee.elems[index].topic), partition: list.pointee.elems[index].partition))
            }
            let err = rd_kafka_assign(rk, list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw RdKafkaError.make(err, "assigning partitions for a scan failed") }
            var records: [ScanResult.Record] = []
            var last: [TopicPartition: Int64] = [:]
            var ends: [TopicPartition: Int64] = [:]
            let deadline = ContinuousClock.now + configuration.operationTimeout
            while !pending.isEmpty {
                guard ContinuousClock.now < deadline else {
                    throw MessagingError(.timeout, "reading \(topics) to their end took longer than \(configuration.operationTimeout); \(pending.count) partitions unfinished")
                }
                guard let message = rd_kafka_consumer_poll(rk, 100) else { continue }
                defer { rd_kafka_message_destroy(message) }
                let m = message.pointee
                let partition = TopicPartition(topic: m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "", partition: m.partition)
                if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    pending.remove(partition)
                    ends[partition] = m.offset
                    continue
                }
                guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw RdKafkaError.make(m.err, "reading '\(partition)' failed")
                }
                last[partition] = m.offset
                var headers: [(name: String, value: String)] = []
                var headerList: OpaquePointer?
                if rd_kafka_message_headers(message, &headerList) == RD_KAFKA_RESP_ERR_NO_ERROR, let headerList {
                    var index = 0
                    var name: UnsafePointer<CChar>?
                    var value: UnsafeRawPointer?
                    var size = 0
                    while rd_kafka_header_get_all(headerList, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                        if let name {
                            headers.append((String(cString: name), value.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: size), as: UTF8.self) } ?? ""))
                        }
                        index += 1
                    }
                }
                var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                let timestamp = rd_kafka_message_timestamp(message, &timestampType)
                let name = configuration.jadugarName(partition.topic) ?? partition.topic
                let fetched = FetchedRecord(
                    topic: name, partition: partition.partition, offset: m.offset,
                    timestamp: timestamp >= 0 ? timestamp : nil, key: nil, payload: [], headers: headers
                )
                let decoded = KafkaEnvelope.decode(fetched)
                if spec.accepts(decoded, topic: name) {
                    records.append(ScanResult.Record(position: RecordPosition(partition: partition, offset: m.offset), retryAt: decoded.retryAt))
                }
            }
            if commitEnd, group != nil, !ends.isEmpty, let commitList = rd_kafka_topic_partition_list_new(Int32(ends.count)) {
                defer { rd_kafka_topic_partition_list_destroy(commitList) }
                for (partition, end) in ends where end >= 0 {
                    rd_kafka_topic_partition_list_add(commitList, partition.topic, partition.partition)?.pointee.offset = end
                }
                let err = rd_kafka_commit(rk, commitList, 0)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR, err != RD_KAFKA_RESP_ERR__NO_OFFSET {
                    throw RdKafkaError.make(err, "committing past the purged messages of group '\(group!)' failed")
                }
            }
            return ScanResult(records: records, last: last)
    }
}
