// The RabbitMQ adapter lands here (see the open issue).
