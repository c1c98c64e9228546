"""OpenAI's HTTP API over Relais: models, chat completions (the agent loop), completions,
embeddings, and per-user usage. The routes are bindings of relais.v1.OpenAIService; their
streams are the event family, framed by bridge/framings/openai.py."""
