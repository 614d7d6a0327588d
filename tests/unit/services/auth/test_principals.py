"""Scopes that org roles give, and the schema rules for request bodies."""

import pydantic
import pytest

from services.auth.credential_schemas import TokenIn
from services.auth.credentials import API_KEY, new_credential
from services.auth.principals import role_scopes
from services.auth.schemas import LoginIn
from services.auth.tenancy_schemas import GrantIn, OrgIn


def test_org_roles_give_growing_scopes() -> None:
    assert role_scopes("acme", "viewer") == ["read:org:acme"]
    assert role_scopes("acme", "member") == ["read:org:acme", "write:org:acme"]
    assert set(role_scopes("acme", "admin")) == {
        "read:org:acme",
        "write:org:acme",
        "ci:org:acme",
        "admin:org:acme",
    }


def test_a_new_credential_keeps_only_its_prefix_and_hash() -> None:
    cred = new_credential(API_KEY)
    assert cred.secret.startswith("sbk_") and len(cred.secret) > 40
    assert cred.secret.startswith(cred.prefix) and len(cred.prefix) == 10
    assert cred.hash != cred.secret and len(cred.hash) == 64


def test_login_needs_a_username_or_an_email() -> None:
    with pytest.raises(pydantic.ValidationError):
        LoginIn.model_validate({"password": "x"})
    assert LoginIn.model_validate({"email": "a@b.c", "password": "x"}).login == "a@b.c"


def test_scopes_and_permissions_are_checked() -> None:
    with pytest.raises(pydantic.ValidationError):
        TokenIn.model_validate({"name": "t", "scopes": ["root"]})
    with pytest.raises(pydantic.ValidationError):
        GrantIn.model_validate({"server": "s", "permissions": ["admin"]})
    assert TokenIn.model_validate({"name": "t", "scopes": ["ci:org:acme"]}).scopes == [
        "ci:org:acme"
    ]


def test_an_org_slug_defaults_from_its_name_and_plans_are_lower_case() -> None:
    org = OrgIn.model_validate({"name": "acme-corp", "plan": "ENTERPRISE"})
    assert org.slug == "acme-corp" and org.plan == "enterprise"
