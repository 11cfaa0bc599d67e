from tidings.testing.contract import ProviderContract
from tidings_weather_alerts.emulator import WeatherAlertsEmulator


class TestContract(ProviderContract):
    provider = "weather-alerts"
    emulator_class = WeatherAlertsEmulator
