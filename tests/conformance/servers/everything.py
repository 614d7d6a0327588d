"""A Python SDK server with every tool, resource and prompt the conformance scenarios call.

The scenarios are the 2026-07-28 ones of npm @modelcontextprotocol/conformance 0.2.x; the server
is written from their descriptions."""

from __future__ import annotations

import asyncio
import base64
import sys
from typing import Annotated, Any

import uvicorn
from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import AssistantMessage, UserMessage
from mcp.shared.exceptions import MCPError
from mcp_types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    EmbeddedResource,
    ImageContent,
    InputRequiredResult,
    PromptReference,
    ResourceTemplateReference,
    TextContent,
    TextResourceContents,
    Tool,
)
from pydantic import Field

from tests.support.upstreams import LOCAL

# a 1x1 red PNG and a 44-byte silent WAV, base64
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5Er"
    "kJggg=="
)
WAV = base64.b64encode(
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00"
    b"\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"
).decode()

SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"
JSON_SCHEMA_TOOL_INPUT = {  # SEP-1613 and SEP-2106 keywords, each to be listed as written
    "$schema": SCHEMA_2020_12,
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}
CACHE = CacheHint(ttl_ms=5000, scope="public")


def _elicit(message: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An elicitation/create input request."""
    schema = {"type": "object", "properties": properties, "required": required}
    return {
        "method": "elicitation/create",
        "params": {"message": message, "requestedSchema": schema},
    }


def _sample(text: str, max_tokens: int) -> dict[str, Any]:
    """A sampling/createMessage input request."""
    message = {"role": "user", "content": {"type": "text", "text": text}}
    return {
        "method": "sampling/createMessage",
        "params": {"messages": [message], "maxTokens": max_tokens},
    }


ROOTS = {"method": "roots/list", "params": {}}


def _asking(requests: dict[str, Any], state: str | None = None) -> InputRequiredResult:
    """An input_required result asking `requests`."""
    return InputRequiredResult.model_validate({"inputRequests": requests, "requestState": state})


def _responses(ctx: Context) -> dict[str, Any]:
    """The retry's inputResponses as plain JSON (empty on a first call)."""
    given = ctx.input_responses or {}
    return {key: value.model_dump(by_alias=True, exclude_none=True) for key, value in given.items()}


def _declared(ctx: Context, capability: str) -> bool:
    """The client declared `capability` on this request."""
    caps = ctx.client_capabilities
    return caps is not None and getattr(caps, capability, None) is not None


class EverythingServer(MCPServer):
    """MCPServer whose json_schema_2020_12_tool lists the exact 2020-12 schema.

    The SDK would generate its own from the function."""

    async def list_tools(self) -> list[Tool]:
        """The tools, the 2020-12 one with its schema as written."""
        tools = []
        for tool in await super().list_tools():
            if tool.name == "json_schema_2020_12_tool":
                tool = tool.model_copy(update={"input_schema": JSON_SCHEMA_TOOL_INPUT})
            tools.append(tool)
        return tools


def make_server() -> MCPServer:
    """The server, its tools, resources and prompts registered."""
    hints = {m: CACHE for m in ("tools/list", "prompts/list", "resources/list")}
    hints.update({"resources/templates/list": CACHE, "resources/read": CACHE})
    server = EverythingServer("conformance-everything", version="1.0.0", cache_hints=hints)
    _content_tools(server)
    _behaviour_tools(server)
    _input_required_tools(server)
    _resources(server)
    _prompts(server)
    return server


def _content_tools(server: MCPServer) -> None:
    """Tools answering each kind of content."""

    @server.tool(description="Answers a simple text.")
    def test_simple_text() -> str:
        return "This is a simple text response for testing."

    @server.tool(description="Answers a 1x1 PNG image.")
    def test_image_content() -> list[ImageContent]:
        return [ImageContent(type="image", data=PNG, mime_type="image/png")]

    @server.tool(description="Answers a short WAV clip.")
    def test_audio_content() -> list[AudioContent]:
        return [AudioContent(type="audio", data=WAV, mime_type="audio/wav")]

    @server.tool(description="Answers an embedded text resource.")
    def test_embedded_resource() -> list[EmbeddedResource]:
        return [_embedded("test://embedded-resource", "This is an embedded resource content.")]

    @server.tool(description="Answers text, an image and a resource.")
    def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
        return [
            TextContent(type="text", text="Multiple content types test:"),
            ImageContent(type="image", data=PNG, mime_type="image/png"),
            _embedded(
                "test://mixed-content-resource", '{"test":"data","value":123}', "application/json"
            ),
        ]

    @server.tool(description="Always fails with a tool error.")
    def test_error_handling() -> CallToolResult:
        text = TextContent(type="text", text="This tool intentionally returns an error for testing")
        return CallToolResult(content=[text], is_error=True)

    @server.tool(description="Takes a JSON Schema 2020-12 input.")
    def json_schema_2020_12_tool(name: str = "", address: dict[str, str] | None = None) -> str:
        return f"name={name}"

    @server.tool(description="Echoes a region that travels in the Mcp-Param-Region header too.")
    def test_custom_header(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
    ) -> str:
        return f"region={region}"


def _embedded(uri: str, text: str, mime: str = "text/plain") -> EmbeddedResource:
    """An embedded text resource."""
    contents = TextResourceContents(uri=uri, mime_type=mime, text=text)
    return EmbeddedResource(type="resource", resource=contents)


def _behaviour_tools(server: MCPServer) -> None:
    """Tools for progress, logging, capabilities and list changes."""

    @server.tool(description="Reports progress 0, 50, 100 of 100.")
    async def test_tool_with_progress(ctx: Context) -> str:
        for step in (0, 50, 100):
            await ctx.report_progress(step, 100)
            if step < 100:
                await asyncio.sleep(0.05)
        return "Progress test completed"

    @server.tool(description="Logs three messages while it runs.")
    async def test_tool_with_logging(ctx: Context) -> str:
        await ctx.info("Tool execution started")
        await asyncio.sleep(0.05)
        await ctx.info("Tool processing data")
        await asyncio.sleep(0.05)
        await ctx.info("Tool execution completed")
        return "Logging test completed"

    @server.tool(description="Logs one message (only sent when the request asked for logs).")
    async def test_logging_tool(ctx: Context) -> str:
        await ctx.info("test_logging_tool ran")
        return "logged"

    @server.tool(description="Needs the client's sampling capability.")
    def test_missing_capability(ctx: Context) -> str:
        if not _declared(ctx, "sampling"):
            data = {"requiredCapabilities": {"sampling": {}}}
            raise MCPError(MISSING_REQUIRED_CLIENT_CAPABILITY, "sampling is required", data)
        return "sampling declared"

    @server.tool(description="Asks for a name through the response, never a separate request.")
    def test_streaming_elicitation(ctx: Context) -> str | InputRequiredResult:
        answers = _responses(ctx)
        if "name" not in answers:
            return _asking({"name": _elicit("Your name?", {"name": {"type": "string"}}, ["name"])})
        return f"Hello, {answers['name'].get('content', {}).get('name')}!"

    @server.tool(description="Changes the tool list.")
    async def test_trigger_tool_change(ctx: Context) -> str:
        await ctx.notify_tools_changed()
        return "tools changed"

    @server.tool(description="Changes the prompt list.")
    async def test_trigger_prompt_change(ctx: Context) -> str:
        await ctx.notify_prompts_changed()
        return "prompts changed"


def _input_required_tools(server: MCPServer) -> None:
    """The multi-round-trip (SEP-2322) tools."""
    name_request = _elicit("What is your name?", {"name": {"type": "string"}}, ["name"])

    @server.tool(description="Asks the user's name.")
    def test_input_required_result_elicitation(ctx: Context) -> str | InputRequiredResult:
        answer = _responses(ctx).get("user_name")
        if not isinstance(answer, dict) or "content" not in answer:
            return _asking({"user_name": name_request})
        return f"Hello, {answer['content'].get('name')}!"

    @server.tool(description="Asks the client's model a question.")
    def test_input_required_result_sampling(ctx: Context) -> str | InputRequiredResult:
        answer = _responses(ctx).get("capital_question")
        if answer is None:
            return _asking({"capital_question": _sample("What is the capital of France?", 100)})
        return f"The model said: {answer.get('content', {}).get('text')}"

    @server.tool(description="Asks the client's roots.")
    def test_input_required_result_list_roots(ctx: Context) -> str | InputRequiredResult:
        answer = _responses(ctx).get("client_roots")
        if answer is None:
            return _asking({"client_roots": ROOTS})
        return "Roots: " + ", ".join(r.get("uri", "") for r in answer.get("roots", []))

    @server.tool(description="Asks a confirmation and checks the echoed state.")
    def test_input_required_result_request_state(ctx: Context) -> str | InputRequiredResult:
        answer = _responses(ctx).get("confirm")
        if answer is None or ctx.request_state != "confirm-round-1":
            ok = _elicit("Please confirm", {"ok": {"type": "boolean"}}, ["ok"])
            return _asking({"confirm": ok}, "confirm-round-1")
        return "state-ok: confirmed"

    @server.tool(description="Asks three inputs of three kinds at once.")
    def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequiredResult:
        answers = _responses(ctx)
        asked = {
            "user_name": name_request,
            "greeting": _sample("Generate a greeting", 50),
            "client_roots": ROOTS,
        }
        if not set(asked) <= set(answers) or ctx.request_state != "multiple-round-1":
            return _asking(asked, "multiple-round-1")
        return "All inputs received"

    @server.tool(description="Asks in two rounds, the state changing between them.")
    def test_input_required_result_multi_round(ctx: Context) -> str | InputRequiredResult:
        answers = _responses(ctx)
        if ctx.request_state == "round-2" and "step2" in answers:
            return "Both steps done"
        if ctx.request_state == "round-1" and "step1" in answers:
            color = _elicit(
                "Step 2: What is your favorite color?", {"color": {"type": "string"}}, []
            )
            return _asking({"step2": color}, "round-2")
        step1 = _elicit("Step 1: What is your name?", {"name": {"type": "string"}}, ["name"])
        return _asking({"step1": step1}, "round-1")

    @server.tool(description="Asks a confirmation whose state the server signs.")
    def test_input_required_result_tampered_state(ctx: Context) -> str | InputRequiredResult:
        if ctx.request_state != "tamper-round-1":
            ok = _elicit("Please confirm", {"ok": {"type": "boolean"}}, ["ok"])
            return _asking({"confirm": ok}, "tamper-round-1")
        return "state verified"

    @server.tool(description="Asks only for what the client declared it can answer.")
    def test_input_required_result_capabilities(ctx: Context) -> str | InputRequiredResult:
        if _responses(ctx):
            return "answered"
        asked: dict[str, Any] = {}
        if _declared(ctx, "sampling"):
            asked["question"] = _sample("Say hello", 20)
        if _declared(ctx, "elicitation"):
            asked["user_name"] = name_request
        if _declared(ctx, "roots"):
            asked["client_roots"] = ROOTS
        if not asked:
            return "nothing to ask"
        return _asking(asked)


def _resources(server: MCPServer) -> None:
    """Static resources and the template."""

    @server.resource("test://static-text", mime_type="text/plain", description="Static text.")
    def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource("test://static-binary", mime_type="image/png", description="A PNG.")
    def static_binary() -> bytes:
        return base64.b64decode(PNG)

    @server.resource("test://watched-resource", mime_type="text/plain", description="Watched.")
    def watched() -> str:
        return "watched"

    @server.resource(
        "test://template/{id}/data", mime_type="application/json", description="Data by id."
    )
    def template_data(id: str) -> str:
        return f'{{"id":"{id}","templateTest":true,"data":"Data for ID: {id}"}}'


def _prompts(server: MCPServer) -> None:
    """The prompts and the completion of test_prompt_with_arguments."""

    @server.prompt(description="A simple prompt.")
    def test_simple_prompt() -> str:
        return "This is a simple prompt for testing."

    @server.prompt(description="A prompt with two arguments.")
    def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
        return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"

    @server.prompt(description="A prompt embedding a resource.")
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[Any]:  # noqa: N803
        resource = _embedded(resourceUri, "Embedded resource content for testing.")
        return [
            UserMessage(content=resource),
            UserMessage(content="Please process the embedded resource above."),
        ]

    @server.prompt(description="A prompt with an image.")
    def test_prompt_with_image() -> list[Any]:
        return [
            UserMessage(content=ImageContent(type="image", data=PNG, mime_type="image/png")),
            UserMessage(content="Please analyze the image above."),
        ]

    @server.prompt(description="A prompt that asks the user for context first.")
    def test_input_required_result_prompt(ctx: Context) -> Any:
        answer = _responses(ctx).get("user_context")
        if answer is None:
            asked = _elicit(
                "What context should the prompt use?", {"context": {"type": "string"}}, ["context"]
            )
            return _asking({"user_context": asked})
        context = answer.get("content", {}).get("context")
        return [AssistantMessage(content=f"Using context: {context}")]

    @server.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        values = [v for v in ("paris", "park", "party") if v.startswith(argument.value)]
        return Completion(values=values, total=len(values), has_more=False)


def main() -> None:
    """Serve the server's Streamable HTTP endpoint at http://127.0.0.1:PORT/mcp (argv[1])."""
    app = make_server().streamable_http_app(transport_security=LOCAL)
    # h11, not httptools: it strips the whitespace around header values that RFC 9110 says a
    # field value excludes (http-header-validation sends `Mcp-Name:   tool  `)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http="h11", log_level="warning")


if __name__ == "__main__":
    main()
