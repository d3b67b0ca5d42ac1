import Jadugar

enum WorkQueueScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("work-queue.pause-resume-clear-status", "a work queue pauses, resumes, clears and reports its counts") { context in
            let n = context.configuration.count(100)
            let manager = context.manager()
            let queue = WorkQueue(manager, name: context.unique("jobs"))
            for i in 0..<n { try await queue.enqueue(context.message(i)) }
            context.count { $0.published += n }
            let status = try await queue.getStatus()
            try context.require(status.pending == n, "status shows \(status.pending) pending, expected \(n)")
            let done = DeliveryTracker()
            try await queue.process(options: ProcessOptions(concurrency: 2)) { task in
                _ = try context.verify(task)
                done.record(task.id)
            }
            try await context.expectAll(done, count: n, "the first batch of jobs")
            await queue.pause()
            for i in n..<(2 * n) { try await queue.enqueue(context.message(i)) }
            context.count { $0.published += n }
            _ = await done.wait(for: 2 * n, within: .milliseconds(300))
            let processedWhilePaused = done.distinct - n
            try context.require(processedWhilePaused <= 2, "\(processedWhilePaused) jobs ran while paused (at most the 2 already taken may finish)")
            let paused = try await queue.getStatus()
            try context.require(paused.isPaused, "status does not show the queue paused")
            try context.require(paused.pending + paused.inFlight + processedWhilePaused == n, "paused status: \(paused.pending) pending + \(paused.inFlight) in flight, expected \(n - processedWhilePaused)")
            await queue.resume()
            let all = await done.wait(for: 2 * n, within: context.configuration.deliveryTimeout)
            try context.require(all, "after resume \(done.distinct) of \(2 * n) jobs ran")
            await queue.pause()
            for i in (2 * n)..<(2 * n + 10) { try await queue.enqueue(context.message(i)) }
            context.count { $0.published += 10 }
            let cleared = try await queue.clear()
            let after = try await queue.getStatus()
            // A broker that reads ahead (prefetch, a consumer-side buffer) already handed some of the
            // ten to the paused worker: those are in flight, not clearable, and not lost.
            try context.require(
                cleared <= 10 && cleared + after.inFlight >= 8,
                "clear removed \(cleared) jobs with \(after.inFlight) in flight, expected the ten between them"
            )
            try context.require(after.pending == 0, "\(after.pending) jobs pending after clear")
            // The handler reports a job done just before the work queue counts it: wait for the count.
            _ = try? await context.within(.seconds(5), "the metrics") {
                while queue.getMetrics().processed < 2 * n { try await Task.sleep(for: .milliseconds(5)) }
                return true
            }
            let metrics = queue.getMetrics()
            try context.require(metrics.processed >= 2 * n, "metrics count \(metrics.processed) processed, expected \(2 * n)")
            context.count { $0.delivered = done.distinct }
            await queue.cancel()
        },
    ]
}
