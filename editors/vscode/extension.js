// Starts `charter lsp` (stdio) for *.charter files; everything else is the server's job.
"use strict";
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("charter");
  const command = config.get("path", "charter");
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "charter",
    "Charter",
    { run: server, debug: server },
    {
      documentSelector: [{ scheme: "file", language: "charter" }],
      initializationOptions: {
        roots: config.get("roots", []),
        debounceMs: config.get("debounceMs", 50),
      },
    }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
