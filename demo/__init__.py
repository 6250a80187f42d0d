"""The Gradio app: colorize photos, take the perception study, read its results."""
