"""tidings-weather-alerts: follow the Weather Alerts API feed.

Installed, it registers the ``weather-alerts`` provider through the ``tidings`` entry point.
"""

from tidings_weather_alerts.models import Alert, AlertsCursor

__version__ = "0.1.0"

__all__ = ["Alert", "AlertsCursor", "__version__"]
