"""Request bodies of the catalog routes."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$"
SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
Text = Annotated[str, Field(max_length=4000)]
Short = Annotated[str, Field(max_length=200)]


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 2000 or not value.startswith(("https://", "http://", "file://")):
        raise ValueError("must be an http(s) URL")
    return value


def _not_null(value: Any) -> Any:
    """An optional field that, when given, must not be null (its column is NOT NULL)."""
    if value is None:
        raise ValueError("must not be null")
    return value


def not_null(*fields: str) -> Any:
    """A before-validator refusing an explicit null for `fields` (absent stays allowed)."""
    return field_validator(*fields, mode="before")(classmethod(lambda cls, v: _not_null(v)))


class McpFields(BaseModel):
    """Metadata an MCP's org admins may set."""

    model_config = ConfigDict(extra="forbid")

    title: Short | None = None
    description: Text | None = None
    repo_url: str | None = None
    homepage: str | None = None
    language: Annotated[str, Field(max_length=50)] | None = None
    license: Annotated[str, Field(max_length=200)] | None = None
    visibility: Literal["public", "private"] | None = None
    category: str | None = None  # id or slug
    tags: list[Annotated[str, Field(pattern=SLUG)]] | None = Field(default=None, max_length=50)

    _urls = field_validator("repo_url", "homepage")(classmethod(lambda cls, v: _http_url(v)))
    _set = not_null("description", "visibility")


class McpCreate(McpFields):
    """A new MCP (`org`: id or slug; default the caller's org)."""

    name: str = Field(pattern=NAME)
    org: str | None = None
    featured: bool | None = None

    _featured = not_null("featured")


class McpUpdate(McpFields):
    """Changed MCP fields (absent: unchanged)."""

    name: str | None = Field(default=None, pattern=NAME)
    featured: bool | None = None

    _set_too = not_null("name", "featured")


class GitVersion(BaseModel):
    """A version from a git repository."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["git"]
    url: str | None = None
    ref: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    version: str | None = Field(default=None, pattern=VERSION)

    _url = field_validator("url")(classmethod(lambda cls, v: _http_url(v)))


class ServerJsonVersion(BaseModel):
    """A version from an official MCP registry server.json."""

    model_config = ConfigDict(extra="forbid")

    server_json: dict[str, Any]
    version: str | None = Field(default=None, pattern=VERSION)
    ref: Annotated[str, Field(min_length=1, max_length=255)] | None = None

    @field_validator("server_json")
    @classmethod
    def _named(cls, doc: dict[str, Any]) -> dict[str, Any]:
        """server.json names its server (the official schema requires `name`)."""
        name = doc.get("name")
        if not isinstance(name, str) or not re.fullmatch(NAME, name):
            raise ValueError("must hold a `name` (a server name such as io.github.owner/repo)")
        return doc


class CategoryBody(BaseModel):
    """Assign a category (id or slug) or none."""

    category: str | None


class TagsBody(BaseModel):
    """Replace an MCP's tags by slug."""

    tags: list[Annotated[str, Field(pattern=SLUG)]] = Field(max_length=50)


class FeaturedBody(BaseModel):
    """Mark an MCP featured or not."""

    featured: bool


class TagCreate(BaseModel):
    """A new tag."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG)
    name: Short


class TaxonomyCreate(TagCreate):
    """A new category (a tag has no description)."""

    description: Text | None = None


class TagUpdate(BaseModel):
    """Changed tag fields (absent: unchanged; null refused, the columns are NOT NULL)."""

    model_config = ConfigDict(extra="forbid")

    slug: str | None = Field(default=None, pattern=SLUG)
    name: Short | None = None

    _set = not_null("slug", "name")


class TaxonomyUpdate(TagUpdate):
    """Changed category fields."""

    description: Text | None = None

    _described = not_null("description")
