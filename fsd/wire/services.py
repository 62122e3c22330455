"""The gRPC services of the contract: their descriptors (for registration and reflection) and client stubs."""
from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor

from fsd.v1 import monitor_pb2, monitor_pb2_grpc, registry_pb2, registry_pb2_grpc, serving_pb2, serving_pb2_grpc

FEATURE_STORE: ServiceDescriptor = serving_pb2.DESCRIPTOR.services_by_name["FeatureStore"]
REGISTRY: ServiceDescriptor = registry_pb2.DESCRIPTOR.services_by_name["Registry"]
MONITOR: ServiceDescriptor = monitor_pb2.DESCRIPTOR.services_by_name["Monitor"]
SERVICE_NAMES: tuple[str, ...] = (FEATURE_STORE.full_name, REGISTRY.full_name, MONITOR.full_name)


@dataclass(frozen=True, slots=True)
class Stubs:
    serving: serving_pb2_grpc.FeatureStoreStub
    registry: registry_pb2_grpc.RegistryStub
    monitor: monitor_pb2_grpc.MonitorStub


def stubs(channel: object) -> Stubs:
    """Client stubs of the three services over one channel."""
    return Stubs(serving_pb2_grpc.FeatureStoreStub(channel), registry_pb2_grpc.RegistryStub(channel), monitor_pb2_grpc.MonitorStub(channel))
