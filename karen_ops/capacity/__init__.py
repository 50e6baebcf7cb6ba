"""Capacity and growth: observed sizes and resource use, growth from the application's own
timestamps, and a weekly report with charts, forecasts and scaling triggers."""
