// The official TypeScript MCP SDK (from npm) against the gateway through nginx.
// usage: SDK_DIR=<.../@modelcontextprotocol/sdk/dist/esm> node ts_client.mjs <mcp url> <api key> <server>
// Prints two JSON lines: first the report (protocol, tool names, an add call, a call with
// progress, an unknown tool's error); then, once the gateway announces it, {"listChanged": true}.
import { pathToFileURL } from "node:url";

const [url, apiKey, server] = process.argv.slice(2);
const sdk = (path) => import(pathToFileURL(`${process.env.SDK_DIR}/${path}`).href);
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");
const { ToolListChangedNotificationSchema } = await sdk("types.js");

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { "X-API-Key": apiKey } },
});
const client = new Client({ name: "switchboard-ts-e2e", version: "1.0.0" });
let announced;
const listChanged = new Promise((resolve) => (announced = resolve));
client.setNotificationHandler(ToolListChangedNotificationSchema, () => announced(true));
await client.connect(transport);

const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);
const result = await client.callTool({ name: `${server}__add`, arguments: { a: 20, b: 22 } });
const progress = [];
const stepped = await client.callTool(
  { name: `${server}__progress`, arguments: { steps: 3 } },
  undefined,
  { onprogress: (p) => progress.push(p.progress) },
);
let error = null;
try {
  await client.callTool({ name: `${server}__missing`, arguments: {} });
} catch (exc) {
  error = { code: exc.code, message: exc.message };
}
console.log(
  JSON.stringify({
    sessionId: transport.sessionId ?? null,
    server: client.getServerVersion(),
    tools,
    result,
    stepped,
    progress,
    error,
  }),
);
let timer;
const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(false), 20000)));
console.log(JSON.stringify({ listChanged: await Promise.race([listChanged, timeout]) }));
clearTimeout(timer);
await transport.terminateSession().catch(() => {});
await client.close();
