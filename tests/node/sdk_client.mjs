// The official TypeScript MCP SDK client (1.x, a session revision) for the tests: it lists the
// tools and makes the calls it is given (tests/support/node.run_sdk_client runs it).
//
//   node sdk_client.mjs URL API_KEY TRANSPORT
//
// TRANSPORT: `streamable` (Streamable HTTP at URL) or `sse` (the deprecated HTTP+SSE transport,
// its stream at URL). stdin: a JSON list of calls, [{"key", "name", "arguments", "progress"}].
// stdout: one JSON line, {sessionId, protocolVersion, tools, calls: {key: {result | error,
// progress, wire}}}: the calls run concurrently, each reported whatever the others did;
// `progress` is what the SDK handed to `onprogress`, `wire` what reached the transport before
// the call's response.
import { text } from "node:stream/consumers";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, apiKey, kind] = process.argv.slice(2);
const plan = JSON.parse(await text(process.stdin));

const Transport = kind === "sse" ? SSEClientTransport : StreamableHTTPClientTransport;
const transport = new Transport(new URL(url), {
  requestInit: { headers: { "X-API-Key": apiKey } },
});
let negotiated = null; // the revision the handshake settled on, as the client hands it over
const setVersion = transport.setProtocolVersion?.bind(transport);
transport.setProtocolVersion = (version) => {
  negotiated = version;
  setVersion?.(version);
};
const client = new Client({ name: "switchboard-tests", version: "1.0.0" });
await client.connect(transport);

// What reached the transport, before the SDK's dispatch: per tool, the progress values that
// arrived between its request and its response (the SDK may still lose them, see the test).
const wire = new Map(); // tool name -> progress values
const open = new Map(); // progress token of a call without its response yet -> its values
const send = transport.send.bind(transport);
transport.send = (message, options) => {
  const token = message.params?._meta?.progressToken;
  if (message.method === "tools/call" && token !== undefined) {
    wire.set(message.params.name, []);
    open.set(token, wire.get(message.params.name));
  }
  return send(message, options);
};
const dispatch = transport.onmessage;
transport.onmessage = (message, extra) => {
  if (message.method === "notifications/progress") {
    open.get(message.params.progressToken)?.push(message.params.progress);
  } else if ("id" in message && !("method" in message)) {
    open.delete(message.id); // the SDK's progress token is the request's id
  }
  dispatch.call(transport, message, extra);
};

const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);

const calls = {};
await Promise.all(
  plan.map(async ({ key, name, arguments: args, progress }) => {
    const heard = [];
    const options = progress ? { onprogress: (p) => heard.push(p.progress) } : undefined;
    try {
      const result = await client.callTool({ name, arguments: args }, undefined, options);
      calls[key] = { result, progress: heard, wire: wire.get(name) ?? [] };
    } catch (exc) {
      const error = { code: exc.code ?? null, message: String(exc.message) };
      calls[key] = { error, progress: heard, wire: wire.get(name) ?? [] };
    }
  }),
);

console.log(
  JSON.stringify({
    sessionId: transport.sessionId ?? null,
    protocolVersion: negotiated,
    tools,
    calls,
  }),
);
await transport.terminateSession?.().catch(() => {});
await client.close();
