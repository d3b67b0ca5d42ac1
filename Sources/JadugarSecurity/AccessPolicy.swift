import Jadugar

/// Who may publish to and subscribe to which topics.
///
/// Rules are checked in order; the first rule whose principal and pattern match decides. With no
/// matching rule, access is denied. For subscriptions, a rule covers a pattern it equals, or a
/// literal topic it matches, or everything when the rule's pattern is `#`.
///
/// ```swift
/// let policy = AccessPolicy(rules: [
///     .deny("billing", .subscribe, "payments.card.#"),
///     .allow("billing", [.publish, .subscribe], "payments.#"),
///     .allow("*", .subscribe, "public.*"),
/// ])
/// try policy.authorize("billing", .publish, topic: "payments.refund")
/// ```
public struct AccessPolicy: Sendable {
    /// What a rule governs.
    public struct Action: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Publishing (and sending to a queue).
        public static let publish = Action(rawValue: 1)
        /// Subscribing to a pattern or consuming a queue.
        public static let subscribe = Action(rawValue: 2)
    }

    /// One rule.
    public struct Rule: Sendable {
        /// `*` for anyone, or one principal's name.
        public var principal: String
        /// The actions it covers.
        public var actions: Action
        /// The topic pattern it covers.
        public var pattern: TopicPattern
        /// Whether it allows or denies.
        public var allows: Bool

        /// A rule that allows.
        public static func allow(_ principal: String, _ actions: Action, _ pattern: String) -> Rule {
            Rule(principal: principal, actions: actions, pattern: try! TopicPattern(pattern), allows: true)
        }

        /// A rule that denies.
        public static func deny(_ principal: String, _ actions: Action, _ pattern: String) -> Rule {
            Rule(principal: principal, actions: actions, pattern: try! TopicPattern(pattern), allows: false)
        }
    }

    /// The rules, in order.
    public var rules: [Rule]

    /// Creates a policy.
    public init(rules: [Rule]) {
        self.rules = rules
    }

    /// Checks one action.
    ///
    /// - Throws: ``MessagingError/Code/accessDenied`` naming the principal, the action and the topic.
    public func authorize(_ principal: String, _ action: Action, topic: String) throws {
        for rule in rules where rule.actions.contains(action) && (rule.principal == "*" || rule.principal == principal) {
            if covers(rule.pattern, topic, action: action) {
                if rule.allows { return }
                throw denied(principal, action, topic, because: "rule \(rule.allows ? "allow" : "deny") '\(rule.pattern)'")
            }
        }
        throw denied(principal, action, topic, because: "no rule allows it")
    }

    private func covers(_ rule: TopicPattern, _ target: String, action: Action) -> Bool {
        if action == .publish || (try? TopicPattern(target))?.isLiteral == true {
            return rule.matches(target) || rule.pattern == target
        }
        return rule.pattern == "#" || rule.pattern == target
    }

    private func denied(_ principal: String, _ action: Action, _ topic: String, because reason: String) -> MessagingError {
        let verb = action == .publish ? "publish to" : "subscribe to"
        return MessagingError(.accessDenied, "'\(principal)' may not \(verb) '\(topic)' (\(reason))")
    }
}

/// A broker that enforces an ``AccessPolicy`` for one principal before anything reaches the broker.
///
/// ```swift
/// let broker = AccessControlledBroker(wrapping: inner, principal: "billing", policy: policy)
/// try await broker.publish(Message(topic: "hr.salaries"), options: .default) // throws accessDenied
/// ```
public final class AccessControlledBroker: BrokerWrapper {
    public let inner: any MessageBroker
    /// Who is acting.
    public let principal: String
    /// The rules.
    public let policy: AccessPolicy

    /// Wraps a broker.
    public init(wrapping inner: any MessageBroker, principal: String, policy: AccessPolicy) {
        self.inner = inner
        self.principal = principal
        self.policy = policy
    }

    public func publish(_ message: Message, options: PublishOptions) async throws {
        try policy.authorize(principal, .publish, topic: message.topic)
        try await inner.publish(message, options: options)
    }

    public func subscribe(_ pattern: String, options: SubscribeOptions) async throws -> DeliveryStream {
        try policy.authorize(principal, .subscribe, topic: pattern)
        return try await inner.subscribe(pattern, options: options)
    }

    public func consume(queue: String, options: ConsumeOptions) async throws -> DeliveryStream {
        try policy.authorize(principal, .subscribe, topic: queue)
        return try await inner.consume(queue: queue, options: options)
    }

    public func get(queue: String) async throws -> Delivery? {
        try policy.authorize(principal, .subscribe, topic: queue)
        return try await inner.get(queue: queue)
    }
}
