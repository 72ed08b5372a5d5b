"""Leader election between replicas on a coordination.k8s.io/v1 Lease: its config section
(`config`), the Lease API (`lease`) and the election protocol (`elector`)."""
