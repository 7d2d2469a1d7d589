"""Model fixtures built once per session (the L models take seconds); tests must not mutate them."""

from __future__ import annotations

import pytest
import torch

from cstrack.models import OMC, CSTrack, create_model


@pytest.fixture(scope="session")
def omc_l() -> OMC:
    return create_model("omc_l")


@pytest.fixture(scope="session")
def cstrack_l() -> CSTrack:
    return create_model("cstrack_l")


@pytest.fixture(scope="session")
def omc_s() -> OMC:
    torch.manual_seed(0)
    return create_model("omc_s").eval()


@pytest.fixture(scope="session")
def cstrack_s() -> CSTrack:
    torch.manual_seed(0)
    return create_model("cstrack_s").eval()
