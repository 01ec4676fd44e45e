"""The list of optional features wired into every server (see runtime.FEATURES)."""

from __future__ import annotations

from openimds.runtime import FEATURES, Feature


def register() -> None:
    """Install each feature once; later issues add theirs to `_ALL`."""
    from openimds import attested_feature, identity_feature
    from openimds.events import feature as events_feature

    features: list[Feature] = []
    features.append(events_feature.install)
    features.append(attested_feature.install)
    features.append(identity_feature.install)
    for feature in features:
        if feature not in FEATURES:
            FEATURES.append(feature)
