// The official TypeScript MCP SDK client (npm) through nginx: connect, list every tool, call one.
// usage: SDK_DIR=<.../@modelcontextprotocol/sdk/dist/esm> API_KEY=<key> \
//        node ts_client.mjs <mcp url> <tool> <arguments as JSON>
// Prints one JSON line: {"protocolVersion", "sessionId", "tools", "result"}.
import { pathToFileURL } from "node:url";

const [url, tool, args] = process.argv.slice(2);
const sdk = (path) => import(pathToFileURL(`${process.env.SDK_DIR}/${path}`).href);
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { "X-API-Key": process.env.API_KEY } },
});
const client = new Client({ name: "switchboard-acceptance", version: "1.0.0" });
await client.connect(transport);
const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);
const result = await client.callTool({ name: tool, arguments: JSON.parse(args) });
console.log(
  JSON.stringify({
    protocolVersion: transport.protocolVersion ?? null,
    sessionId: transport.sessionId ?? null,
    tools,
    result,
  }),
);
await transport.terminateSession().catch(() => {});
await client.close();
