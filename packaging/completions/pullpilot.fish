# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_pullpilot_global_optspecs
    string join \n scope= project-directory= soak= health-timeout= health-stable= cleanup= self-update= data-dir= notify-url= dry-run= log-level= log-json= timezone= jitter= compat-watchtower= insecure-registries= metrics-file= wait h/help V/version
end

function __fish_pullpilot_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_pullpilot_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_pullpilot_using_subcommand
    set -l cmd (__fish_pullpilot_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c pullpilot -n "__fish_pullpilot_needs_command" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_needs_command" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "plan" -d 'Show what `apply` would do now, and why, for every container in scope. Changes nothing'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "apply" -d 'Make one pass: heal interrupted updates, start soak clocks, roll out soaked digests with a health gate, roll back what fails'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "status" -d 'Show what pullpilot knows, without asking any registry: running digest, soak clock, pin, blocked digests, last update, history and any interrupted update'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "doctor" -d 'Check the setup and say what to fix: the units\' settings file, Docker, compose, the scope, the data directory, registry credentials, notification URLs, webhook settings and the systemd units. Each line is ok, warn, fail or skip; the exit status is 1 when any line is fail. Changes nothing (the data directory gets a probe file, removed at once)'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "rollback" -d 'Put a service back on the image it ran before its last update (health-gated), block the abandoned digest and pin the service there'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "pin" -d 'Hold a service at a digest (its current one by default) until `unpin`'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "unpin" -d 'Let a pinned service be updated again'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "unblock" -d 'Forget "failed the health gate" marks, for a service or a digest'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "pause" -d 'Hold updates back (of these services, or all): passes still check, soak and notify, but start no update until `resume` or the end of --for / --until'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "resume" -d 'Lift a pause (of these services, or the one of all)'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "approve" -d 'Let a soaked update that waits for approval (io.pullpilot.approve=manual) roll out; digest-exact: a newer digest needs a new approval'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "listen" -d 'Stay running: apply on relay pokes and local webhook calls (debounced), and on the PP_SCHEDULE floor whatever the relay does'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "relay" -d 'Run a relay server (the relay protocol v1) for `listen` clients; put it behind a TLS reverse proxy'
complete -c pullpilot -n "__fish_pullpilot_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l json -d 'Print one JSON document on stdout instead of a table'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand plan" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l json -d 'Print one JSON document on stdout instead of a table'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand apply" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l json -d 'Print one JSON document on stdout instead of text'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand status" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l send-test -d 'Also send a test message to every notification URL (PP_NOTIFY_URL) and report each answer'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l json -d 'Print one JSON document on stdout instead of text'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l to -d 'Roll back to this digest from the service\'s history instead of the previous one' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l json -d 'Print one JSON document on stdout instead of text'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand rollback" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l compose -d 'Also write `image: repo:tag@sha256:…` into the compose file (or the `.env` variable the image line uses), changing nothing else in the file'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l json -d 'Print one JSON document on stdout instead of text'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pin" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l compose -d 'Also remove the digest from the compose file\'s image line (or its `.env` variable)'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l json -d 'Print one JSON document on stdout instead of text'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unpin" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l json -d 'Print one JSON document on stdout instead of text'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand unblock" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l for -d 'End the pause by itself after this long (e.g. 2d, 12h)' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l until -d 'End the pause by itself at this time: RFC 3339, or `YYYY-MM-DD HH:MM` in PP_TIMEZONE' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l json -d 'Print one JSON document on stdout instead of text'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand pause" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l json -d 'Print one JSON document on stdout instead of text'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand resume" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l now -d 'Run that service\'s pass at once (locked, pulled by digest, health-gated)'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l json -d 'Print one JSON document on stdout instead of text (with --now: the pass\'s)'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand approve" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l http -d 'Also accept `POST /notify[/SERVICE]` on this address, with the bearer secret from PP_WEBHOOK_SECRET (required). `GET /health` answers without it' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l debounce -d 'Wait this long after the last poke before a pass (pokes in between join it)' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l min-interval -d 'Least time between two poke-triggered passes (scheduled passes are not held back)' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l show-url -d 'Print the relay poke URL (a secret: anyone holding it can trigger passes) and exit'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand listen" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l listen -d 'Address to serve plain HTTP and WebSocket on (put a TLS reverse proxy in front)' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l state-dir -d 'Where registrations are kept (created 0700; the file inside is 0600)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l public-url -d 'The public origin clients reach this relay at, such as https://relay.example.org; used in the poke and listen URLs it hands out. Without it, the request\'s Host header is used (and X-Forwarded-Proto from a proxy on loopback)' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l prune-after -d 'Forget a webhook after this long without a connection or poke (at least 1d; a copy of the registrations is kept in registrations.before-prune.json first)' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l max-registrations -d 'Most registrations kept; provisions beyond it get 503 relay_full' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l max-registrations-per-network -d 'Most registrations from one client network (IPv4 address or IPv6 /64); more get 429 too_many_registrations' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l scope -d 'Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l project-directory -d 'The compose project directory for scope `project` (default: the working directory)' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l soak -d 'How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l health-timeout -d 'How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l health-stable -d 'How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l cleanup -d 'Remove the old image after a successful update [env: PP_CLEANUP]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l self-update -d 'Check pullpilot\'s own container too (notify only, never recreated) [env: PP_SELF_UPDATE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l data-dir -d 'Where state, the lock and the webhook identity live [env: PP_DATA_DIR]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l notify-url -d 'Notification URLs, space-separated [env: PP_NOTIFY_URL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l dry-run -d 'Plan and log only; change nothing [env: PP_DRY_RUN]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l log-level -d 'error, warn, info, debug or trace [env: PP_LOG_LEVEL]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l log-json -d 'Log JSON lines instead of text [env: PP_LOG_JSON]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l timezone -d 'IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l jitter -d 'Random delay before a scheduled pass [env: PP_JITTER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l compat-watchtower -d 'Honour Watchtower\'s enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l insecure-registries -d 'Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]' -r
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l metrics-file -d 'Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]' -r -F
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -l wait -d 'Wait for another run\'s lock instead of exiting with status 75'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -s h -l help -d 'Print help'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand relay" -s V -l version -d 'Print version'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "plan" -d 'Show what `apply` would do now, and why, for every container in scope. Changes nothing'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "apply" -d 'Make one pass: heal interrupted updates, start soak clocks, roll out soaked digests with a health gate, roll back what fails'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "status" -d 'Show what pullpilot knows, without asking any registry: running digest, soak clock, pin, blocked digests, last update, history and any interrupted update'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "doctor" -d 'Check the setup and say what to fix: the units\' settings file, Docker, compose, the scope, the data directory, registry credentials, notification URLs, webhook settings and the systemd units. Each line is ok, warn, fail or skip; the exit status is 1 when any line is fail. Changes nothing (the data directory gets a probe file, removed at once)'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "rollback" -d 'Put a service back on the image it ran before its last update (health-gated), block the abandoned digest and pin the service there'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "pin" -d 'Hold a service at a digest (its current one by default) until `unpin`'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "unpin" -d 'Let a pinned service be updated again'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "unblock" -d 'Forget "failed the health gate" marks, for a service or a digest'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "pause" -d 'Hold updates back (of these services, or all): passes still check, soak and notify, but start no update until `resume` or the end of --for / --until'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "resume" -d 'Lift a pause (of these services, or the one of all)'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "approve" -d 'Let a soaked update that waits for approval (io.pullpilot.approve=manual) roll out; digest-exact: a newer digest needs a new approval'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "listen" -d 'Stay running: apply on relay pokes and local webhook calls (debounced), and on the PP_SCHEDULE floor whatever the relay does'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "relay" -d 'Run a relay server (the relay protocol v1) for `listen` clients; put it behind a TLS reverse proxy'
complete -c pullpilot -n "__fish_pullpilot_using_subcommand help; and not __fish_seen_subcommand_from plan apply status doctor rollback pin unpin unblock pause resume approve listen relay help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
