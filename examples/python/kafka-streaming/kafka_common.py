"""What both Kafka agents share: how to connect, and the topic (a module beside them, copied into their containers)."""
import os

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


def kafka_settings() -> dict:
    """The brokers, and the run's SCRAM credentials (the page's "Security considerations: authentication")."""
    settings = {"bootstrap_servers": os.environ["KAFKA_BROKERS"].split(",")}
    if os.environ.get("KAFKA_USERNAME"):
        settings.update(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=os.environ["KAFKA_USERNAME"],
            sasl_plain_password=os.environ["KAFKA_PASSWORD"],
        )
    return settings


def ensure_topic(topic: str) -> None:
    """The broker does not create topics on first use; both policies let their agent create this one."""
    admin = KafkaAdminClient(**kafka_settings())
    try:
        admin.create_topics([NewTopic(name=topic, num_partitions=1, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
