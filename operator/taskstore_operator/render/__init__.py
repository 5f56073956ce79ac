"""Pure builders: managed Redis manifests, agent environment and apply bodies, conditions."""
