// The Kafka adapter lands here (see the open issue).
