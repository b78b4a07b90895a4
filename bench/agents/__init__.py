"""The example assistant's scenario corpus, the policy sets it runs against, and the runner."""
