"""Request bodies of the catalog routes."""

from __future__ import annotations

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


class McpCreate(McpFields):
    """A new MCP (`org`: id or slug; default the caller's org)."""

    name: str = Field(pattern=NAME)
    org: str | None = None
    featured: bool | None = None


class McpUpdate(McpFields):
    """Changed MCP fields (absent: unchanged)."""

    name: str | None = Field(default=None, pattern=NAME)
    featured: bool | None = None


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


class CategoryBody(BaseModel):
    """Assign a category (id or slug) or none."""

    category: str | None


class TagsBody(BaseModel):
    """Replace an MCP's tags by slug."""

    tags: list[Annotated[str, Field(pattern=SLUG)]] = Field(max_length=50)


class FeaturedBody(BaseModel):
    """Mark an MCP featured or not."""

    featured: bool


class TaxonomyCreate(BaseModel):
    """A new category or tag."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG)
    name: Short
    description: Text | None = None


class TaxonomyUpdate(BaseModel):
    """Changed category or tag fields."""

    model_config = ConfigDict(extra="forbid")

    slug: str | None = Field(default=None, pattern=SLUG)
    name: Short | None = None
    description: Text | None = None
