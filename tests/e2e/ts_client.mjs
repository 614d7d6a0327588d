// The official TypeScript MCP SDK (from npm) against the gateway through nginx.
// usage: SDK_DIR=<.../@modelcontextprotocol/sdk/dist/esm> node ts_client.mjs <mcp url> <api key> <tool> <json args>
// Prints one JSON line: the negotiated protocol, the listed tool names and the call's result.
import { pathToFileURL } from "node:url";

const [url, apiKey, tool, rawArgs] = process.argv.slice(2);
const sdk = (path) => import(pathToFileURL(`${process.env.SDK_DIR}/${path}`).href);
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { "X-API-Key": apiKey } },
});
const client = new Client({ name: "switchboard-ts-e2e", version: "1.0.0" });
await client.connect(transport);
const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);
const result = await client.callTool({ name: tool, arguments: JSON.parse(rawArgs) });
let error = null;
try {
  await client.callTool({ name: `${tool}_missing`, arguments: {} });
} catch (exc) {
  error = { code: exc.code, message: exc.message };
}
console.log(
  JSON.stringify({
    protocolVersion: transport.protocolVersion ?? null,
    sessionId: transport.sessionId ?? null,
    server: client.getServerVersion(),
    tools,
    result,
    error,
  }),
);
await transport.terminateSession().catch(() => {});
await client.close();
