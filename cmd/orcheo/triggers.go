package main

func triggerCommands(e *env, cfg Config) map[string]command {
	return map[string]command{
		"cron":    cronCommands(e, cfg),
		"webhook": webhookCommands(e, cfg),
	}
}
