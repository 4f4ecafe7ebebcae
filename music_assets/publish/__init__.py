"""Hugging Face staging layout, dataset card and Hub client."""
