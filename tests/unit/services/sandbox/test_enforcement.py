"""What each tier reports it enforces, and when a tier is too weak for untrusted code."""

from __future__ import annotations

from services.sandbox import isolation
from services.sandbox.enforcement import measure


def test_bwrap_isolates_everything_and_is_not_weak_even_without_a_uid_of_its_own() -> None:
    report = measure(
        isolation.BWRAP_USERNS, gvisor=False, root=False, seccomp=True, landlock_abi=7, cgroups=True
    )
    assert report.network and report.filesystem and report.pid_namespace
    assert report.missing() == ["a uid of its own"]
    assert not report.weak


def test_the_fallback_tier_as_root_on_debian_12_keeps_the_network_shut_by_seccomp() -> None:
    report = measure(
        isolation.LANDLOCK_FALLBACK,
        gvisor=False,
        root=True,
        seccomp=True,
        landlock_abi=2,
        cgroups=True,
    )
    assert (report.network, report.network_by, report.landlock_tcp) == (True, "seccomp", False)
    assert report.separate_uid and report.signals_scoped
    assert report.missing() == ["a PID namespace"]
    assert not report.weak


def test_the_fallback_tier_of_a_non_root_service_is_weak() -> None:
    report = measure(
        isolation.LANDLOCK_FALLBACK,
        gvisor=False,
        root=False,
        seccomp=True,
        landlock_abi=3,
        cgroups=True,
    )
    assert report.missing() == ["a uid of its own", "a PID namespace", "signal scoping"]
    assert report.weak
    newer = measure(
        isolation.LANDLOCK_FALLBACK, gvisor=False, root=False, seccomp=True, landlock_abi=6
    )
    assert newer.signals_scoped and newer.weak


def test_no_mechanism_under_gvisor_is_weak_though_the_kernel_is_gvisors() -> None:
    report = measure(isolation.NONE, gvisor=True, root=True, seccomp=True, landlock_abi=0)
    assert report.user_space_kernel
    assert "network isolation" in report.missing() and "filesystem isolation" in report.missing()
    assert report.weak


def test_missing_cgroup_limits_are_reported_but_do_not_make_a_tier_weak() -> None:
    report = measure(isolation.BWRAP_USERNS, gvisor=False, root=True, seccomp=True, landlock_abi=0)
    assert report.missing() == ["a cgroup memory limit", "a cgroup pids limit"]
    assert not report.weak
