"""Shared pytest configuration: the conformance suite's parametrisation."""

from conformance import parametrize_cases


def pytest_generate_tests(metafunc):
    parametrize_cases(metafunc)
