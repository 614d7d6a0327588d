// The official TypeScript MCP SDK client (1.x, a session revision) as one column of the client ×
// server matrix: it lists the gateway's tools and makes the calls it is given, through nginx.
// usage: SDK_DIR=<.../@modelcontextprotocol/sdk/dist/esm> node matrix_client.mjs <url> <api key> <transport>
// transport: `streamable` (Streamable HTTP at <url>) or `sse` (the deprecated HTTP+SSE transport,
// its stream at <url>).
// stdin: a JSON list of calls, [{"key", "name", "arguments", "progress": bool}].
// stdout: one JSON line, {sessionId, protocolVersion, tools, calls: {key: {result | error,
// progress, wire}}}: every call is made and reported, whatever the others did; `progress` is what
// the SDK handed to `onprogress`, `wire` what arrived on the transport before the response.
import { text } from "node:stream/consumers";
import { pathToFileURL } from "node:url";

const [url, apiKey, kind] = process.argv.slice(2);
const plan = JSON.parse(await text(process.stdin));
const sdk = (path) => import(pathToFileURL(`${process.env.SDK_DIR}/${path}`).href);
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");
const { SSEClientTransport } = await sdk("client/sse.js");

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
const client = new Client({ name: "switchboard-matrix", version: "1.0.0" });
await client.connect(transport);

// What reached the transport, before the SDK's dispatch: the progress values that arrived
// between a call's request and its response (the SDK may still lose them, see the test).
let wire = null;
const dispatch = transport.onmessage;
transport.onmessage = (message, extra) => {
  if (wire && message.method === "notifications/progress") wire.push(message.params.progress);
  if (wire && "id" in message && !("method" in message)) wire = null;
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
for (const { key, name, arguments: args, progress } of plan) {
  const heard = [];
  const seen = (wire = []);
  const options = progress ? { onprogress: (p) => heard.push(p.progress) } : undefined;
  try {
    const result = await client.callTool({ name, arguments: args }, undefined, options);
    calls[key] = { result, progress: heard, wire: seen };
  } catch (exc) {
    const error = { code: exc.code ?? null, message: String(exc.message) };
    calls[key] = { error, progress: heard, wire: seen };
  }
}

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
