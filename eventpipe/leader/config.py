"""The `leaderElection:` section: which Lease the replicas compete for, and its timings."""

from __future__ import annotations

from pydantic import Field, model_validator

from eventpipe.core.model import Model
from eventpipe.core.units import Duration


class LeaderElectionConfig(Model):
    """Run several replicas, with only the Lease holder watching and sending."""

    enabled: bool = Field(default=False, description="Enable leader election.")
    leader_election_id: str = Field(
        default="eventpipe", alias="leaderElectionID",
        description="Name of the coordination.k8s.io/v1 Lease the replicas compete for.",
    )
    namespace: str = Field(
        default="", description="Namespace of the Lease; empty = the pod's own ($POD_NAMESPACE, "
        "else the service account's namespace file, else 'default').",
    )
    identity: str = Field(
        default="", description="This replica's name in the Lease; empty = $POD_NAME, else "
        "hostname-pid. Must differ between replicas.",
    )
    lease_duration: Duration = Field(
        default=15.0, alias="leaseDuration",
        description="How long a Lease not renewed stays taken; a standby takes over this long "
        "after it last saw the Lease change (rounded up to whole seconds in the Lease).",
    )
    renew_deadline: Duration = Field(
        default=10.0, alias="renewDeadline",
        description="A leader that has not renewed for this long stops sending and exits (1). "
        "Must be below leaseDuration, so it stops before anyone can take over.",
    )
    retry_period: Duration = Field(
        default=2.0, alias="retryPeriod",
        description="How often the leader renews and a standby tries to acquire.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> LeaderElectionConfig:
        if not 0 < self.renew_deadline < self.lease_duration:
            raise ValueError("renewDeadline must be above 0 and below leaseDuration")
        if not 0 < self.retry_period < self.renew_deadline:
            raise ValueError("retryPeriod must be above 0 and below renewDeadline")
        return self
