"""Azure SDK clients skip per-request proxy lookups unless a proxy is configured."""

from shared.adapters.http_env import environment_proxies_in_use


def test_no_proxy_variable_means_no_environment_lookups():
    assert not environment_proxies_in_use({"PATH": "/usr/bin"})


def test_any_proxy_variable_keeps_the_sdk_default():
    assert environment_proxies_in_use({"HTTPS_PROXY": "http://proxy:3128"})
    assert environment_proxies_in_use({"http_proxy": "http://proxy:3128"})
    assert environment_proxies_in_use({"NETRC": "/home/ops/.netrc"})
