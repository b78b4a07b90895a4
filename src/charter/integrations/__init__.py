"""Orchestrator integrations (MCP, LangGraph, OpenAI Agents SDK); each imports its package lazily."""
