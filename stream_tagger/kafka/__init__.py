"""The Kafka side of the worker: the consumer loop, offsets and lag, the publisher, rebalances."""
