// A TypeScript SDK (1.x) server with every tool, resource and prompt the session-era conformance
// scenarios (npm @modelcontextprotocol/conformance 0.1.x) call, written from their descriptions.
// Streamable HTTP with sessions and an event store, as TS SDK servers in the wild run: every SSE
// response starts with a priming event (`id:` + `retry:` + empty `data:`, SEP-1699).
// usage: SDK_DIR=<.../@modelcontextprotocol/sdk/dist/esm> node everything.mjs <port>
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";

const port = Number(process.argv[2]);
const sdk = (path) => import(pathToFileURL(`${process.env.SDK_DIR}/${path}`).href);
const { Server } = await sdk("server/index.js");
const { StreamableHTTPServerTransport } = await sdk("server/streamableHttp.js");
const { createMcpExpressApp } = await sdk("server/express.js");
const { InMemoryEventStore } = await sdk("examples/shared/inMemoryEventStore.js");
const types = await sdk("types.js");

// a 1x1 red PNG and a 44-byte silent WAV
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV = Buffer.from(
  "524946462400000057415645666d74201000000001000100401f0000803e00000200100064617461" + "00000000",
  "hex",
).toString("base64");
const text = (value) => ({ type: "text", text: value });
const image = () => ({ type: "image", data: PNG, mimeType: "image/png" });
const embedded = (uri, value, mimeType = "text/plain") => ({
  type: "resource",
  resource: { uri, mimeType, text: value },
});
const noArgs = { type: "object", properties: {} };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const TOOLS = [
  { name: "test_simple_text", description: "Answers a simple text.", inputSchema: noArgs },
  { name: "test_image_content", description: "Answers a PNG image.", inputSchema: noArgs },
  { name: "test_audio_content", description: "Answers a WAV clip.", inputSchema: noArgs },
  { name: "test_embedded_resource", description: "Answers a resource.", inputSchema: noArgs },
  {
    name: "test_multiple_content_types",
    description: "Answers text, an image and a resource.",
    inputSchema: noArgs,
  },
  { name: "test_tool_with_logging", description: "Logs three messages.", inputSchema: noArgs },
  { name: "test_error_handling", description: "Always fails.", inputSchema: noArgs },
  { name: "test_tool_with_progress", description: "Reports progress.", inputSchema: noArgs },
  {
    name: "test_sampling",
    description: "Asks the client's model.",
    inputSchema: {
      type: "object",
      properties: { prompt: { type: "string" } },
      required: ["prompt"],
    },
  },
  {
    name: "test_elicitation",
    description: "Asks the user.",
    inputSchema: {
      type: "object",
      properties: { message: { type: "string" } },
      required: ["message"],
    },
  },
  {
    name: "test_elicitation_sep1034_defaults",
    description: "Asks with a default for every primitive type.",
    inputSchema: noArgs,
  },
  {
    name: "test_elicitation_sep1330_enums",
    description: "Asks with every enum variant.",
    inputSchema: noArgs,
  },
  {
    name: "test_reconnection",
    description: "Closes its SSE stream mid-call; the answer comes on the resumed stream.",
    inputSchema: noArgs,
  },
  {
    name: "json_schema_2020_12_tool",
    description: "Tool with JSON Schema 2020-12 features",
    inputSchema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      $defs: {
        address: {
          type: "object",
          properties: { street: { type: "string" }, city: { type: "string" } },
        },
      },
      properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
      additionalProperties: false,
    },
  },
];

const SEP1034_SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", description: "User name", default: "John Doe" },
    age: { type: "integer", description: "User age", default: 30 },
    score: { type: "number", description: "User score", default: 95.5 },
    status: {
      type: "string",
      description: "User status",
      enum: ["active", "inactive", "pending"],
      default: "active",
    },
    verified: { type: "boolean", description: "Verification status", default: true },
  },
};
const choices = (prefix, titles) => titles.map((title, i) => ({ const: `${prefix}${i + 1}`, title }));
const SEP1330_SCHEMA = {
  type: "object",
  properties: {
    untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
    titledSingle: {
      type: "string",
      oneOf: choices("value", ["First Option", "Second Option", "Third Option"]),
    },
    legacyEnum: {
      type: "string",
      enum: ["opt1", "opt2", "opt3"],
      enumNames: ["Option One", "Option Two", "Option Three"],
    },
    untitledMulti: {
      type: "array",
      items: { type: "string", enum: ["option1", "option2", "option3"] },
    },
    titledMulti: {
      type: "array",
      items: { anyOf: choices("value", ["First Choice", "Second Choice", "Third Choice"]) },
    },
  },
};

async function elicit(extra, message, requestedSchema) {
  const answer = await extra.sendRequest(
    { method: "elicitation/create", params: { message, requestedSchema } },
    types.ElicitResultSchema,
  );
  const content = JSON.stringify(answer.content ?? {});
  return { content: [text(`Elicitation completed: action=${answer.action}, content=${content}`)] };
}

async function log(extra, data) {
  await extra.sendNotification({ method: "notifications/message", params: { level: "info", data } });
}

const CALLS = {
  test_simple_text: async () => ({
    content: [text("This is a simple text response for testing.")],
  }),
  test_image_content: async () => ({ content: [image()] }),
  test_audio_content: async () => ({
    content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }],
  }),
  test_embedded_resource: async () => ({
    content: [embedded("test://embedded-resource", "This is an embedded resource content.")],
  }),
  test_multiple_content_types: async () => ({
    content: [
      text("Multiple content types test:"),
      image(),
      embedded("test://mixed-content-resource", '{"test":"data","value":123}', "application/json"),
    ],
  }),
  test_tool_with_logging: async (args, extra) => {
    await log(extra, "Tool execution started");
    await sleep(50);
    await log(extra, "Tool processing data");
    await sleep(50);
    await log(extra, "Tool execution completed");
    return { content: [text("Logging test completed")] };
  },
  test_error_handling: async () => ({
    isError: true,
    content: [text("This tool intentionally returns an error for testing")],
  }),
  test_tool_with_progress: async (args, extra) => {
    const progressToken = extra._meta?.progressToken;
    for (const progress of [0, 50, 100]) {
      if (progressToken !== undefined) {
        await extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken, progress, total: 100 },
        });
      }
      if (progress < 100) await sleep(50);
    }
    return { content: [text("Progress test completed")] };
  },
  test_sampling: async (args, extra) => {
    const answer = await extra.sendRequest(
      {
        method: "sampling/createMessage",
        params: {
          messages: [{ role: "user", content: text(String(args.prompt)) }],
          maxTokens: 100,
        },
      },
      types.CreateMessageResultSchema,
    );
    return { content: [text(`LLM response: ${answer.content?.text ?? ""}`)] };
  },
  test_elicitation: async (args, extra) => {
    const answer = await extra.sendRequest(
      {
        method: "elicitation/create",
        params: {
          message: String(args.message),
          requestedSchema: {
            type: "object",
            properties: {
              username: { type: "string", description: "User's response" },
              email: { type: "string", description: "User's email address" },
            },
            required: ["username", "email"],
          },
        },
      },
      types.ElicitResultSchema,
    );
    const content = JSON.stringify(answer.content ?? {});
    return { content: [text(`User response: action=${answer.action}, content=${content}`)] };
  },
  test_elicitation_sep1034_defaults: (args, extra) =>
    elicit(extra, "Please review the defaults", SEP1034_SCHEMA),
  test_elicitation_sep1330_enums: (args, extra) =>
    elicit(extra, "Please choose", SEP1330_SCHEMA),
  test_reconnection: async (args, extra) => {
    extra.closeSSEStream?.(); // the client resumes with GET + Last-Event-ID
    await sleep(100);
    return { content: [text("Reconnection test completed")] };
  },
  json_schema_2020_12_tool: async (args) => ({ content: [text(`name=${args.name ?? ""}`)] }),
};

const RESOURCES = [
  { uri: "test://static-text", name: "static-text", description: "Static text.", mimeType: "text/plain" },
  { uri: "test://static-binary", name: "static-binary", description: "A PNG.", mimeType: "image/png" },
  { uri: "test://watched-resource", name: "watched", description: "Watched.", mimeType: "text/plain" },
];
const TEMPLATE = /^test:\/\/template\/([^/]+)\/data$/;

function readResource(uri) {
  if (uri === "test://static-text") {
    return { uri, mimeType: "text/plain", text: "This is the content of the static text resource." };
  }
  if (uri === "test://static-binary") return { uri, mimeType: "image/png", blob: PNG };
  if (uri === "test://watched-resource") return { uri, mimeType: "text/plain", text: "watched" };
  const match = TEMPLATE.exec(uri);
  if (match) {
    const id = match[1];
    const data = JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` });
    return { uri, mimeType: "application/json", text: data };
  }
  throw new types.McpError(types.ErrorCode.InvalidParams, "Resource not found", { uri });
}

const PROMPTS = [
  { name: "test_simple_prompt", description: "A simple prompt." },
  {
    name: "test_prompt_with_arguments",
    description: "A prompt with two arguments.",
    arguments: [
      { name: "arg1", description: "First test argument", required: true },
      { name: "arg2", description: "Second test argument", required: true },
    ],
  },
  {
    name: "test_prompt_with_embedded_resource",
    description: "A prompt embedding a resource.",
    arguments: [{ name: "resourceUri", description: "URI to embed", required: true }],
  },
  { name: "test_prompt_with_image", description: "A prompt with an image." },
];

function getPrompt(name, args = {}) {
  const user = (content) => ({ role: "user", content });
  switch (name) {
    case "test_simple_prompt":
      return { messages: [user(text("This is a simple prompt for testing."))] };
    case "test_prompt_with_arguments":
      return {
        messages: [user(text(`Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'`))],
      };
    case "test_prompt_with_embedded_resource":
      return {
        messages: [
          user(embedded(args.resourceUri, "Embedded resource content for testing.")),
          user(text("Please process the embedded resource above.")),
        ],
      };
    case "test_prompt_with_image":
      return { messages: [user(image()), user(text("Please analyze the image above."))] };
    default:
      throw new types.McpError(types.ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
  }
}

function makeServer() {
  const server = new Server(
    { name: "conformance-everything-ts", version: "1.0.0" },
    {
      capabilities: {
        tools: {},
        resources: { subscribe: true },
        prompts: {},
        logging: {},
        completions: {},
      },
    },
  );
  const subscriptions = new Set();
  server.setRequestHandler(types.ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(types.CallToolRequestSchema, async (request, extra) => {
    const call = CALLS[request.params.name];
    if (!call) {
      throw new types.McpError(types.ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    }
    return call(request.params.arguments ?? {}, extra);
  });
  server.setRequestHandler(types.ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(types.ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [
      {
        uriTemplate: "test://template/{id}/data",
        name: "template-data",
        description: "Data by id.",
        mimeType: "application/json",
      },
    ],
  }));
  server.setRequestHandler(types.ReadResourceRequestSchema, async (request) => ({
    contents: [readResource(request.params.uri)],
  }));
  server.setRequestHandler(types.SubscribeRequestSchema, async (request) => {
    subscriptions.add(request.params.uri);
    return {};
  });
  server.setRequestHandler(types.UnsubscribeRequestSchema, async (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });
  server.setRequestHandler(types.ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));
  server.setRequestHandler(types.GetPromptRequestSchema, async (request) =>
    getPrompt(request.params.name, request.params.arguments),
  );
  server.setRequestHandler(types.CompleteRequestSchema, async (request) => {
    const typed = request.params.argument.value;
    const values = ["paris", "park", "party"].filter((v) => v.startsWith(typed));
    return { completion: { values, total: values.length, hasMore: false } };
  });
  server.setRequestHandler(types.SetLevelRequestSchema, async () => ({}));
  return server;
}

// One transport (and server) per session, as the SDK's examples keep them.
const sessions = new Map();
const app = createMcpExpressApp({ host: "127.0.0.1" }); // Host checked against loopback names

app.post("/mcp", async (req, res) => {
  const id = req.headers["mcp-session-id"];
  let transport = id ? sessions.get(id) : undefined;
  if (!transport) {
    if (id || !types.isInitializeRequest(req.body)) {
      res.status(id ? 404 : 400).json({
        jsonrpc: "2.0",
        error: { code: -32000, message: "Unknown or missing session" },
        id: null,
      });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new InMemoryEventStore(),
      retryInterval: 500,
      onsessioninitialized: (sid) => sessions.set(sid, transport),
    });
    transport.onclose = () => sessions.delete(transport.sessionId);
    await makeServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});

const onSession = async (req, res) => {
  const transport = sessions.get(req.headers["mcp-session-id"]);
  if (!transport) {
    res.status(404).send("Unknown or missing session");
    return;
  }
  await transport.handleRequest(req, res);
};
app.get("/mcp", onSession);
app.delete("/mcp", onSession);

app.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
