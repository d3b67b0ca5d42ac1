import Atomics
import Foundation
import Histogram
import Metrics
import Jadugar
import JadugarConformance
import Synchronization

/// Runs one workload against one broker and measures it.
///
/// Latency is measured from each message's *intended* send time, which a schedule-aware rate
/// limiter fixes in advance; when the broker stalls, the messages that should have gone out meanwhile
/// carry the stall in their latency (and in the publish delay), instead of vanishing from the
/// statistics (coordinated omission).
struct WorkloadRunner: Sendable {
    let workload: Workload
    let brokerURL: String
    let brokerName: String
    let runID: String
    let workerID: UInt16
    let progress: ProgressPrinter
    let factory: @Sendable () throws -> any MessageBroker
    /// The broker's restart command, for faults with `action: restart`.
    var restartCommand: String? = nil

    /// One measured phase.
    struct Phase: Sendable {
        var result: WorkloadResult
        var publishDelayP99: Double
        var held: Bool
    }

    func run() async throws -> WorkloadResult {
        switch workload.rate {
        case .unlimited:
            return try await phase(rate: nil, label: workload.name).result
        case .fixed(let rate):
            return try await phase(rate: rate, label: workload.name).result
        case .sweep(let rates):
            var points: [SweepPoint] = []
            var last: WorkloadResult?
            for rate in rates {
                let phase = try await phase(rate: rate, label: "\(workload.name) @\(Int(rate))/s")
                points.append(Self.point(rate, phase.result))
                last = phase.result
            }
            var result = last!
            result.sweep = points
            return result
        case .max:
            return try await searchMaximum()
        }
    }

    static func point(_ rate: Double, _ result: WorkloadResult) -> SweepPoint {
        SweepPoint(targetRate: rate, achievedRate: result.summary.publishRate, endToEnd: result.endToEndLatency.percentiles, publish: result.publishLatency.percentiles)
    }

    /// Finds the highest rate that holds: the publish rate and (with consumers) the consume rate
    /// reach 97% of the target, the publish delay stays under 10 ms at p99, and nothing fails or is lost.
    private func searchMaximum() async throws -> WorkloadResult {
        let criterion = "a rate holds when publish and consume rates reach 97% of it, p99 publish delay ≤ 10 ms, and no errors or losses; search stops when the bracket is within 5% or after 8 probes"
        let probe = try await phase(rate: nil, label: "\(workload.name) probe max")
        var steps = [Self.point(0, probe.result)]
        let unlimited = max(probe.result.summary.publishRate, 1)
        var low = 0.0, high = unlimited * 1.1
        var best: WorkloadResult?
        var probes = 0
        var target = unlimited * 0.9
        while probes < 8, low == 0 || high / low > 1.05 {
            probes += 1
            let phase = try await phase(rate: target, label: "\(workload.name) probe \(Int(target))/s")
            steps.append(Self.point(target, phase.result))
            if phase.held {
                low = target
                best = phase.result
            } else {
                high = target
            }
            target = low == 0 ? high * 0.5 : (low * high).squareRoot()
            if high < 1 { break }
        }
        let converged = low > 0 && high / low <= 1.05
        var result = best ?? probe.result
        result.rateSearch = RateSearch(
            converged: converged, criterion: criterion, sustainableRate: low, steps: steps,
            note: converged ? nil : (low == 0 ? "no probed rate held; the broker did not sustain even \(Int(high))/s" : "stopped after \(probes) probes with the bracket \(Int(low))–\(Int(high))/s")
        )
        return result
    }

    // MARK: One phase

    private final class Counters: Sendable {
        let published = ManagedAtomic<Int>(0)
        let confirmed = ManagedAtomic<Int>(0)
        let errors = ManagedAtomic<Int>(0)
        let delivered = ManagedAtomic<Int>(0)
        let measuredConfirmed = ManagedAtomic<Int>(0)
        let measuredDelivered = ManagedAtomic<Int>(0)
        let measuredBytes = ManagedAtomic<Int>(0)
        let lastConfirmNanos = ManagedAtomic<Int>(0)
        let lastMeasuredDeliveryNanos = ManagedAtomic<Int>(0)
        let firstError = Mutex<String?>(nil)
    }

    func phase(rate: Double?, label: String) async throws -> Phase {
        let w = workload
        let epoch = ContinuousClock.now
        func nanos(_ instant: ContinuousClock.Instant) -> Int64 {
            let d = epoch.duration(to: instant)
            return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
        }
        let warmup = w.backlog == nil ? w.warmup : .zero
        let warmupNanos = nanos(epoch + warmup)
        let prefix = "bench.\(runID).\(label.filter { $0.isLetter || $0.isNumber }.prefix(40)).\(Message.makeID().suffix(6))"
        let topics = (0..<w.topics).map { "\(prefix).t\($0)" }
        let counters = Counters()
        let publishLatency = LatencyRecorder(), endToEnd = LatencyRecorder(), publishDelay = LatencyRecorder()
        let confirmedLedger = DeliveryLedger()
        let cpuStart = ProcessStats.cpuSeconds

        var clients: [any MessageBroker] = []
        func connect() async throws -> any MessageBroker {
            let client = try factory()
            try await client.connect()
            clients.append(client)
            return client
        }
        defer {
            let all = clients
            Task { for client in all { try? await client.disconnect() } }
        }

        // Subscriptions are declared before anything is published, so no message finds no queue.
        let setup = try await connect()
        var subscriptions: [(topic: String, group: String, ledger: DeliveryLedger)] = []
        for topic in topics {
            if w.partitions > 1 { try? await setup.createTopic(topic) }
            for s in 0..<w.subscriptionsPerTopic {
                let group = "\(topic).s\(s)"
                _ = try await setup.declareSubscription(topic, options: SubscribeOptions(group: group, autoAck: w.ack == .auto, prefetch: w.prefetch))
                subscriptions.append((topic, group, DeliveryLedger()))
            }
        }

        let consumersStopped = ManagedAtomic<Bool>(false)
        let extraStreams = StreamList()
        var consumerTasks: [Task<Void, Never>] = []
        var streams: [DeliveryStream] = []
        func startConsumers(drainRate: Double?) async throws {
            let perConsumerInterval: Duration? = drainRate.map { .seconds(Double(subscriptions.count * w.consumersPerSubscription) / $0) }
            for subscription in subscriptions {
                for _ in 0..<w.consumersPerSubscription {
                    let client = try await connect()
                    let options = SubscribeOptions(group: subscription.group, autoAck: w.ack == .auto, prefetch: w.prefetch)
                    var stream = try await client.subscribe(subscription.topic, options: options)
                    streams.append(stream)
                    let ledger = subscription.ledger
                    let topic = subscription.topic
                    consumerTasks.append(Task {
                        var pending: [Delivery] = []
                        let batch: Int = if case .multi(let n) = w.ack { max(1, min(n, w.prefetch)) } else { 1 }
                        var next = ContinuousClock.now
                        while !consumersStopped.load(ordering: .relaxed) {
                            let received: Delivery?
                            do {
                                received = try await stream.next()
                            } catch {
                                received = nil
                            }
                            guard let delivery = received else {
                                // The stream ended under a running consumer (a dropped connection, a
                                // restarted broker): subscribe again, as an application would. What the
                                // old stream held unacknowledged comes back as redeliveries.
                                if consumersStopped.load(ordering: .relaxed) { break }
                                pending.removeAll()
                                try? await Task.sleep(for: .milliseconds(200))
                                if let fresh = try? await client.subscribe(topic, options: options) {
                                    extraStreams.append(fresh)
                                    stream = fresh
                                }
                                continue
                            }
                            let now = ContinuousClock.now
                            if let stamp = MessageStamp(delivery.message.payload), stamp.producer >> 16 == UInt32(workerID) {
                                let fresh = ledger.record(producer: stamp.producer, sequence: stamp.sequence)
                                counters.delivered.wrappingIncrement(ordering: .relaxed)
                                if fresh, Int64(stamp.intendedNanos) >= warmupNanos {
                                    endToEnd.record(nanos: nanos(now) - Int64(stamp.intendedNanos))
                                    counters.measuredDelivered.wrappingIncrement(ordering: .relaxed)
                                    counters.lastMeasuredDeliveryNanos.store(Int(nanos(now)), ordering: .relaxed)
                                }
                            }
                            if w.consumerDelay > .zero { try? await Task.sleep(for: w.consumerDelay) }
                            if let interval = perConsumerInterval {
                                next = max(next + interval, now)
                                try? await Task.sleep(until: next)
                            }
                            guard w.ack != .auto else { continue }
                            pending.append(delivery)
                            if pending.count >= batch {
                                for settled in pending { try? await settled.ack() }
                                pending.removeAll(keepingCapacity: true)
                            }
                        }
                        for settled in pending { try? await settled.ack() }
                    })
                }
            }
        }
        if w.backlog == nil { try await startConsumers(drainRate: nil) }

        // Producers.
        let producerCount = w.topics * w.producersPerTopic
        let ratePerProducer = rate.map { $0 / Double(max(producerCount, 1)) }
        let publishEnd: ContinuousClock.Instant? = w.backlog != nil ? nil : w.duration.map { epoch + warmup + $0 }
        let limit: Int? = w.backlog?.messages ?? w.messages
        let perProducerLimit: Int? = limit.map { ($0 + max(producerCount, 1) - 1) / max(producerCount, 1) }
        let subscriptionCount = subscriptions.count
        // Queue depth as the broker itself reports it, for the metrics endpoint.
        let depth = QueueDepthMonitor(broker: setup, queues: subscriptions.map(\.group), interval: .seconds(1))
        let sampler = Task { await sample(label: label, epoch: epoch, warmup: warmup, counters: counters, subscriptions: subscriptionCount, publishLatency: publishLatency, endToEnd: endToEnd, depth: depth) }
        var producerTasks: [Task<Void, Never>] = []
        var producerIndex: UInt32 = 0
        for topic in topics {
            for _ in 0..<w.producersPerTopic {
                let client = try await connect()
                let producer = (UInt32(workerID) << 16) | producerIndex
                producerIndex += 1
                let sequence = ManagedAtomic<UInt64>(0)
                let keyCounter = ManagedAtomic<Int>(0)
                for _ in 0..<w.inFlight {
                    producerTasks.append(Task {
                        var generator = SystemRandomNumberGenerator()
                        while true {
                            let k = sequence.loadThenWrappingIncrement(ordering: .relaxed)
                            if let perProducerLimit, k >= UInt64(perProducerLimit) { return }
                            var intended = ContinuousClock.now
                            if let ratePerProducer {
                                intended = epoch + .seconds(Double(k) / ratePerProducer)
                            }
                            if let publishEnd, intended >= publishEnd { return }
                            if intended > ContinuousClock.now + .microseconds(200) {
                                try? await Task.sleep(until: intended)
                            }
                            let start = ContinuousClock.now
                            let intendedNanos = max(nanos(intended), 0)
                            let measured = intendedNanos >= warmupNanos
                            if measured, ratePerProducer != nil { publishDelay.record(nanos: nanos(start) - intendedNanos) }
                            var payload = makePayload(&generator)
                            MessageStamp(producer: producer, sequence: k, intendedNanos: UInt64(intendedNanos)).write(into: &payload)
                            let size = payload.count
                            let key: String? = switch w.keys {
                            case .none: nil
                            case .random(let n): "k\(Int.random(in: 0..<n, using: &generator))"
                            case .roundRobin(let n): "k\(keyCounter.loadThenWrappingIncrement(ordering: .relaxed) % n)"
                            }
                            var message = Message(topic: topic, payload: payload)
                            if let key { message.metadata.headers["x-key"] = key }
                            counters.published.wrappingIncrement(ordering: .relaxed)
                            do {
                                try await client.publish(message, options: PublishOptions(persistent: w.persistent, key: key))
                                let done = ContinuousClock.now
                                confirmedLedger.record(producer: producer, sequence: k)
                                counters.confirmed.wrappingIncrement(ordering: .relaxed)
                                counters.lastConfirmNanos.store(Int(nanos(done)), ordering: .relaxed)
                                if measured {
                                    publishLatency.record(nanos: nanos(done) - intendedNanos)
                                    counters.measuredConfirmed.wrappingIncrement(ordering: .relaxed)
                                    counters.measuredBytes.wrappingIncrement(by: size, ordering: .relaxed)
                                }
                            } catch {
                                counters.errors.wrappingIncrement(ordering: .relaxed)
                                counters.firstError.withLock { if $0 == nil { $0 = String(describing: error) } }
                                if Task.isCancelled { return }
                                // The broker is away (a fault, a restart): do not spin on instant failures.
                                try? await Task.sleep(for: .milliseconds(20))
                            }
                        }
                    })
                }
            }
        }
        let publishingDone = ManagedAtomic<Bool>(false)
        let faultTask: Task<[FaultResult], Never>? = w.faults.isEmpty ? nil : Task {
            await injectFaults(w.faults, epoch: epoch, counters: counters, publishingDone: publishingDone, nanos: nanos)
        }
        for task in producerTasks { await task.value }
        publishingDone.store(true, ordering: .relaxed)
        let publishingEnded = ContinuousClock.now

        if let backlog = w.backlog { try await startConsumers(drainRate: backlog.drainRate) }

        // Drain: every confirmed message at every subscription, or idle, or the timeout.
        let drainDeadline = ContinuousClock.now + w.drainTimeout
        while !subscriptions.isEmpty, ContinuousClock.now < drainDeadline {
            let target = confirmedLedger.distinct
            if subscriptions.allSatisfy({ $0.ledger.distinct >= target }) { break }
            if w.exitWhen == .idle, let last = subscriptions.map(\.ledger.lastDelivery).max(), ContinuousClock.now - last > .seconds(2), ContinuousClock.now - publishingEnded > .seconds(2) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Stop every consumer from pulling and let each settle what it holds before any stream
        // closes: closing one first would requeue its in-hand messages to a consumer still running.
        consumersStopped.store(true, ordering: .relaxed)
        for task in consumerTasks { task.cancel() }
        for task in consumerTasks { await task.value }
        for stream in streams + extraStreams.all { await stream.close() }
        sampler.cancel()
        let timeSeries = await sampler.value

        let faultResults = await faultTask?.value
        let lost = subscriptions.reduce(0) { $0 + $1.ledger.missing(from: confirmedLedger) }
        let duplicates = subscriptions.reduce(0) { $0 + $1.ledger.duplicates }
        let delivered = subscriptions.reduce(0) { $0 + $1.ledger.distinct }
        let publishSeconds = max(Double(counters.lastConfirmNanos.load(ordering: .relaxed) - Int(warmupNanos)) / 1e9, 1e-6)
        let consumeSeconds = max(Double(counters.lastMeasuredDeliveryNanos.load(ordering: .relaxed) - Int(warmupNanos)) / 1e9, 1e-6)
        let measuredConfirmed = counters.measuredConfirmed.load(ordering: .relaxed)
        let measuredDelivered = counters.measuredDelivered.load(ordering: .relaxed)
        let summary = WorkloadSummary(
            published: counters.published.load(ordering: .relaxed),
            confirmed: counters.confirmed.load(ordering: .relaxed),
            delivered: delivered,
            duplicates: duplicates,
            lost: lost,
            errors: counters.errors.load(ordering: .relaxed),
            durationSeconds: publishSeconds,
            publishRate: Double(measuredConfirmed) / publishSeconds,
            consumeRate: Double(measuredDelivered) / consumeSeconds,
            bytesPerSecond: Double(counters.measuredBytes.load(ordering: .relaxed)) / publishSeconds,
            targetRate: rate,
            cpuSeconds: ProcessStats.cpuSeconds - cpuStart,
            peakRSSBytes: ProcessStats.peakRSSBytes,
            runnerOverheadNanosPerMessage: RunnerOverhead.nanosPerMessage
        )
        var parameters = w.parameters
        if let error = counters.firstError.withLock({ $0 }) { parameters["firstError"] = BrokerURL.redact(String(error.prefix(300))) }
        if lost > 0, ContinuousClock.now >= drainDeadline {
            // Lost means "confirmed, not delivered by the end of the run": say when the end was a
            // drain deadline that slow consumers missed, rather than a message the broker dropped.
            parameters["drain"] = "timed out after \(w.drainTimeout) with \(lost) confirmed messages not yet delivered (counted as lost); raise drainTimeout to wait longer"
        }
        let result = WorkloadResult(
            name: w.name, broker: brokerName, parameters: parameters, summary: summary,
            publishLatency: LatencyDistribution(histogram: publishLatency.total),
            endToEndLatency: LatencyDistribution(histogram: endToEnd.total),
            publishDelay: LatencyDistribution(histogram: publishDelay.total),
            timeSeries: timeSeries,
            faults: faultResults
        )
        let delayP99 = publishDelay.total.totalCount == 0 ? 0 : Double(publishDelay.total.valueAtPercentile(99))
        var held = summary.errors == 0 && lost == 0 && delayP99 <= 10_000
        if let rate {
            held = held && summary.publishRate >= 0.97 * rate && (subscriptions.isEmpty || summary.consumeRate >= 0.97 * rate * Double(w.subscriptionsPerTopic))
        }
        progress.finish("[\(brokerName)] \(label): \(Int(summary.publishRate)) msg/s published, \(Int(summary.consumeRate)) msg/s consumed, p99 end-to-end \(Self.ms(result.endToEndLatency.percentiles["p99"])), lost \(lost), duplicates \(duplicates), errors \(summary.errors)")
        return Phase(result: result, publishDelayP99: delayP99, held: held)
    }

    /// Fires each fault in turn when its trigger is reached, runs its command, and times the
    /// client's recovery as the first confirm after the command returned.
    private func injectFaults(_ faults: [Workload.Fault], epoch: ContinuousClock.Instant, counters: Counters, publishingDone: ManagedAtomic<Bool>, nanos: (ContinuousClock.Instant) -> Int64) async -> [FaultResult] {
        var results: [FaultResult] = []
        for fault in faults {
            // Wait for the trigger; a workload that ends first skips the fault.
            var reached = false
            while !publishingDone.load(ordering: .relaxed) {
                switch fault.trigger {
                case .after(let duration): reached = ContinuousClock.now >= epoch + duration
                case .afterMessages(let count): reached = counters.confirmed.load(ordering: .relaxed) >= count
                }
                if reached { break }
                try? await Task.sleep(for: .milliseconds(20))
            }
            let at = epoch.duration(to: .now).seconds
            let confirmedBefore = counters.confirmed.load(ordering: .relaxed)
            func skipped(_ why: String) -> FaultResult {
                FaultResult(name: fault.name, atSeconds: at, command: "", outcome: "skipped", detail: why, reconnectSeconds: nil, confirmedBefore: confirmedBefore)
            }
            guard reached else {
                results.append(skipped("the workload stopped publishing before \(fault.trigger)"))
                continue
            }
            let command: String?
            switch fault.action {
            case .restart: command = restartCommand
            case .command(let commands): command = commands[brokerName] ?? commands["*"]
            }
            guard let command else {
                results.append(skipped(fault.action == .restart
                    ? "no restart command for \(brokerName): pass --restart \(brokerName)=COMMAND"
                    : "no command for \(brokerName) in this fault"))
                continue
            }
            progress.update("[\(brokerName)] fault '\(fault.name)': \(BrokerURL.redact(command))")
            let outcome: (String, String?)
            do {
                let result = try await BrokerCommand.run(command, timeout: .seconds(300))
                outcome = result.status == 0 ? ("ran", nil) : ("failed", "exit status \(result.status): \(BrokerURL.redact(String(result.output.suffix(400))))")
            } catch {
                outcome = ("failed", BrokerURL.redact(String(describing: error)))
            }
            let commandEnded = nanos(.now)
            var reconnect: Double?
            while !publishingDone.load(ordering: .relaxed) {
                let last = Int64(counters.lastConfirmNanos.load(ordering: .relaxed))
                if last > commandEnded {
                    reconnect = Double(last - commandEnded) / 1e9
                    break
                }
                try? await Task.sleep(for: .milliseconds(10))
            }
            results.append(FaultResult(
                name: fault.name, atSeconds: at, command: BrokerURL.redact(command), outcome: outcome.0, detail: outcome.1,
                reconnectSeconds: reconnect, confirmedBefore: confirmedBefore
            ))
        }
        return results
    }

    static func ms(_ micros: Double?) -> String {
        guard let micros else { return "-" }
        return String(format: "%.2f ms", micros / 1000)
    }

    private func makePayload(_ generator: inout SystemRandomNumberGenerator) -> [UInt8] {
        let size: Int
        switch workload.messageSize {
        case .fixed(let value):
            size = value
        case .distribution(let entries):
            let total = entries.reduce(0) { $0 + $1.weight }
            var pick = Double.random(in: 0..<total, using: &generator)
            var chosen = entries[0].size
            for entry in entries {
                if pick < entry.weight { chosen = entry.size; break }
                pick -= entry.weight
            }
            size = chosen
        }
        if let template = PayloadTemplate.bytes(for: workload.payloadFile) { return template }
        return [UInt8](repeating: 0x2A, count: max(size, MessageStamp.size))
    }

    private func sample(label: String, epoch: ContinuousClock.Instant, warmup: Duration, counters: Counters, subscriptions: Int, publishLatency: LatencyRecorder, endToEnd: LatencyRecorder, depth: QueueDepthMonitor) async -> [TimeSample] {
        var samples: [TimeSample] = []
        var previous = (confirmed: 0, delivered: 0, errors: 0)
        // The runner counts in atomics on the hot path; once a second the deltas go to swift-metrics,
        // so `jadugar run --metrics-port` shows the run's rates beside the broker's queue depth.
        let dimensions = [("broker", brokerName), ("topic", label)]
        let publishedMetric = Counter(label: MessagingMetrics.Name.published, dimensions: dimensions)
        let errorsMetric = Counter(label: MessagingMetrics.Name.publishErrors, dimensions: dimensions + [("code", "any")])
        let deliveredMetric = Counter(label: MessagingMetrics.Name.delivered, dimensions: [("broker", brokerName), ("queue", label), ("group", "runner")])
        var tick = epoch
        while !Task.isCancelled {
            tick = tick + .seconds(1)
            try? await Task.sleep(until: tick)
            await depth.sample()
            let confirmed = counters.confirmed.load(ordering: .relaxed)
            let delivered = counters.delivered.load(ordering: .relaxed)
            let errors = counters.errors.load(ordering: .relaxed)
            let elapsed = epoch.duration(to: .now)
            let time = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18 - Double(warmup.components.seconds) - Double(warmup.components.attoseconds) / 1e18
            let sample = TimeSample(
                time: (time * 10).rounded() / 10,
                publishRate: Double(confirmed - previous.confirmed),
                consumeRate: Double(delivered - previous.delivered),
                errorRate: Double(errors - previous.errors),
                backlog: max(confirmed * subscriptions - delivered, 0),
                publishP99: publishLatency.takeIntervalP99(),
                endToEndP99: endToEnd.takeIntervalP99()
            )
            samples.append(sample)
            publishedMetric.increment(by: max(0, confirmed - previous.confirmed))
            deliveredMetric.increment(by: max(0, delivered - previous.delivered))
            errorsMetric.increment(by: max(0, errors - previous.errors))
            previous = (confirmed, delivered, errors)
            progress.update("[\(brokerName)] \(label)  \(String(format: "%5.1f", time)) s  \(Int(sample.publishRate)) msg/s out  \(Int(sample.consumeRate)) msg/s in  p99 \(Self.ms(sample.endToEndP99))  backlog \(sample.backlog)  errors \(errors)")
        }
        return samples
    }
}

/// Payload files, read once.
enum PayloadTemplate {
    private static let cache = Mutex<[String: [UInt8]]>([:])

    static func bytes(for path: String?) -> [UInt8]? {
        guard let path else { return nil }
        return cache.withLock { cache in
            if let bytes = cache[path] { return bytes }
            var bytes = (FileManager.default.contents(atPath: path).map { [UInt8]($0) }) ?? []
            if bytes.count < MessageStamp.size { bytes += [UInt8](repeating: 0, count: MessageStamp.size - bytes.count) }
            cache[path] = bytes
            return bytes
        }
    }
}

/// The runner's own cost per message: stamping, histogram recording and ledger bookkeeping on
/// both sides, measured once per process in a tight loop without a broker.
enum RunnerOverhead {
    static let nanosPerMessage: Double = {
        let iterations = 200_000
        let latency = LatencyRecorder()
        let ledger = DeliveryLedger()
        var payload = [UInt8](repeating: 0, count: 64)
        let start = ContinuousClock.now
        for i in 0..<iterations {
            MessageStamp(producer: 1, sequence: UInt64(i), intendedNanos: UInt64(i)).write(into: &payload)
            latency.record(nanos: Int64(i % 5000) * 1000)
            if let stamp = MessageStamp(payload) {
                ledger.record(producer: stamp.producer, sequence: stamp.sequence)
                latency.record(nanos: Int64(stamp.intendedNanos % 7000) * 1000)
            }
        }
        let elapsed = ContinuousClock.now - start
        return (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(iterations)
    }()
}

/// Streams opened by consumers that re-subscribed after a fault, closed with the others at the end.
final class StreamList: Sendable {
    private let streams = Mutex<[DeliveryStream]>([])

    func append(_ stream: DeliveryStream) { streams.withLock { $0.append(stream) } }

    var all: [DeliveryStream] { streams.withLock { $0 } }
}
